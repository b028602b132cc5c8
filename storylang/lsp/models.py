"""The model files the ComfyUI servers have, for completion: `model "` offers their checkpoints,
`lora "` their LoRAs.

Only servers the user trusts are asked (those named with STORYC_COMFY, allowed in the user's
[trust] servers or STORYC_TRUST_SERVERS, or given a token; trust.py): a script opened in an editor
may come from a stranger, and its project file must not make the editor contact a server of its
choosing, just as `storyc check` asks none. The lists are fetched in a background thread, so a
completion never waits on the network: it offers what is known, says it is incomplete, and the
next one has the lists. They are kept for a few minutes.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from storylang.trust import shown_url

# a statement → the server's model folders its quoted file comes from
FOLDERS = {
    "model": ("checkpoints", "diffusion_models"), "start": ("checkpoints", "diffusion_models"),
    "lipsync": ("checkpoints", "diffusion_models"), "lora": ("loras",), "vae": ("vae",),
    "encoder": ("text_encoders",), "controlnet": ("controlnet",),
}
KEEP = 300.0  # seconds a server's lists are used before they are asked for again
TIMEOUT = 5.0


@dataclass(frozen=True)
class ModelFile:
    name: str
    folder: str
    server: str  # shown without credentials


class ServerModels:
    def __init__(self, keep: float = KEEP) -> None:
        self.keep = keep
        self._lists: dict[str, tuple[float, dict[str, list[str]]]] = {}  # url → (when, folder → files)
        self._asking: set[str] = set()
        self._lock = threading.Lock()

    def files(self, script: Path, key: str) -> tuple[list[ModelFile], bool]:
        """The files that `key`'s value may name, from the script's trusted servers, and whether
        the lists are complete (False while one is being fetched)."""
        folders = FOLDERS.get(key)
        if folders is None:
            return [], True
        out, complete = [], True
        for url in trusted_servers(script):
            lists = self._known(url)
            if lists is None:
                complete = False
                continue
            out += [ModelFile(name, folder, shown_url(url)) for folder in folders for name in lists.get(folder, [])]
        return out, complete

    def refresh(self, script: Path) -> None:
        """Start fetching the lists of the script's servers that are not known or too old."""
        for url in trusted_servers(script):
            self._known(url)

    def _known(self, url: str) -> dict[str, list[str]] | None:
        with self._lock:
            found = self._lists.get(url)
            fresh = found is not None and time.monotonic() - found[0] < self.keep
            if not fresh and url not in self._asking:
                self._asking.add(url)
                threading.Thread(target=self._fetch, args=(url,), daemon=True).start()
        return found[1] if found is not None else None

    def _fetch(self, url: str) -> None:
        from storylang.comfy.client import Client, ComfyError

        lists: dict[str, list[str]] = {}
        try:
            client = Client(url, timeout=TIMEOUT)
            there = set(client.model_folders())
            for folder in sorted({f for fs in FOLDERS.values() for f in fs} & there):
                lists[folder] = [n for n in client.models(folder) if isinstance(n, str)]
        except (ComfyError, OSError, ValueError, TypeError):
            pass  # a server that cannot be asked offers nothing; the build is where it is reported
        with self._lock:
            self._lists[url] = (time.monotonic(), lists)
            self._asking.discard(url)


def trusted_servers(script: Path) -> list[str]:
    """The script's ComfyUI servers that the user trusts (never one only the project file names)."""
    from storylang.config import ConfigError, comfy_servers

    try:
        return list(comfy_servers(script, ())[2])
    except (ConfigError, OSError):
        return []
