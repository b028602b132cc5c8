"""The external programs storylang drives: which ffmpeg, which voice engine, and their versions.

ffmpeg lookup order: $STORYLANG_FFMPEG, then the static build shipped by imageio-ffmpeg,
then `ffmpeg` on PATH (`--system-ffmpeg` puts PATH first).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from storylang.diagnostics import OneLineError


class ToolMissing(OneLineError):
    """A required program is not available; the message says how to get it."""


@dataclass(frozen=True)
class Ffmpeg:
    path: str
    version: str
    origin: str  # "STORYLANG_FFMPEG", "imageio-ffmpeg" or "PATH"


def _version(path: str) -> str:
    """The version a program reports ("" when it is no working ffmpeg), remembered per binary (its
    path, size and modification time) in the user's cache folder: asking costs ~30 ms of every build."""
    stamp = _binary_stamp(path)
    known = _known_versions()
    if stamp and stamp in known:
        return known[stamp]
    version = _ask_version(path)
    if stamp and version:
        _remember_version(stamp, version, known)
    return version


def _ask_version(path: str) -> str:
    try:
        out = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else ""


def _binary_stamp(path: str) -> str:
    found = shutil.which(path)
    try:
        st = os.stat(found) if found else None
    except OSError:
        return ""
    return f"{os.path.realpath(found)}|{st.st_size}|{st.st_mtime_ns}" if st else ""


def _versions_file():
    from storylang.resources import user_cache_dir

    folder = user_cache_dir()
    return folder / "ffmpeg-versions.json" if folder else None


def _known_versions() -> dict[str, str]:
    import json

    f = _versions_file()
    try:
        data = json.loads(f.read_text(encoding="utf-8")) if f else {}
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _remember_version(stamp: str, version: str, known: dict[str, str]) -> None:
    import json

    from storylang import atomic

    f = _versions_file()
    if f is None:
        return
    kept = dict(list(known.items())[-15:])  # a few binaries at most (bundled, system, a chosen one)
    kept[stamp] = version
    try:
        atomic.write_text(f, json.dumps(kept, indent=0))  # oldest first
    except OSError:
        pass  # only start-up time is lost


def _candidates(prefer_system: bool):
    env = os.environ.get("STORYLANG_FFMPEG")
    if env:
        yield env, "STORYLANG_FFMPEG"
    order = [(_bundled_ffmpeg, "imageio-ffmpeg"), (lambda: shutil.which("ffmpeg"), "PATH")]
    for find, origin in (order[::-1] if prefer_system else order):
        path = find()
        if path:
            yield path, origin


def _bundled_ffmpeg() -> str | None:
    """The static ffmpeg imageio-ffmpeg ships, found in its package folder without importing it (its
    own lookup runs `ffmpeg -version` again: ~50 ms of every build); else what that lookup finds."""
    import glob
    import importlib.util

    try:
        spec = importlib.util.find_spec("imageio_ffmpeg")
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not os.environ.get("IMAGEIO_FFMPEG_EXE"):
        for folder in spec.submodule_search_locations or ():
            exes = sorted(p for p in glob.glob(os.path.join(glob.escape(folder), "binaries", "ffmpeg-*"))
                          if os.path.isfile(p) and os.access(p, os.X_OK))
            if exes:
                return exes[-1]
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception:  # the package ships no binary for this platform and finds none elsewhere
        return None


@lru_cache(maxsize=2)
def find_ffmpeg(prefer_system: bool = False) -> Ffmpeg:
    for path, origin in _candidates(prefer_system):
        version = _version(path)
        if version:
            return Ffmpeg(path=path, version=version, origin=origin)
    raise ToolMissing("no working ffmpeg found: install the project's dependencies "
                      "(pip install storylang brings imageio-ffmpeg) or set STORYLANG_FFMPEG")
