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
    try:
        out = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    m = re.search(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else ""


def _candidates(prefer_system: bool):
    env = os.environ.get("STORYLANG_FFMPEG")
    if env:
        yield env, "STORYLANG_FFMPEG"
    found = []
    try:
        import imageio_ffmpeg

        found.append((imageio_ffmpeg.get_ffmpeg_exe(), "imageio-ffmpeg"))
    except Exception:  # the package is missing or ships no binary for this platform
        pass
    system = shutil.which("ffmpeg")
    if system:
        found.append((system, "PATH"))
    if prefer_system:
        found.sort(key=lambda x: x[1] != "PATH")
    yield from found


@lru_cache(maxsize=2)
def find_ffmpeg(prefer_system: bool = False) -> Ffmpeg:
    for path, origin in _candidates(prefer_system):
        version = _version(path)
        if version:
            return Ffmpeg(path=path, version=version, origin=origin)
    raise ToolMissing("no working ffmpeg found: install the project's dependencies "
                      "(pip install storylang brings imageio-ffmpeg) or set STORYLANG_FFMPEG")
