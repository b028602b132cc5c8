"""Cheap checks that a media file is what the script says it is: headers, streams, duration.

`storyc check` and the build both run them at resolve time, so a corrupt image or a music
file that is not audio is reported at the line that names it, before anything is built.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from storylang.cache import file_digest
from storylang.toolchain import ToolMissing, find_ffmpeg

_MEMO: dict[tuple[str, str], str | None] = {}
_HINTS = {
    "image": "use a PNG, JPEG or WebP image",
    "audio": "use an audio file ffmpeg can read (OGG, WAV, MP3, FLAC, M4A)",
    "video": "use a video file ffmpeg can read (MP4, MOV, WebM, MKV)",
}


def hint(kind: str) -> str:
    return _HINTS[kind]


def problem(path: Path, kind: str) -> str | None:
    """None if `path` is a readable file of `kind` ("image", "audio" or "video"), else what is wrong."""
    memo = (file_digest(path), kind)
    if memo not in _MEMO:
        _MEMO[memo] = _PROBES[kind](path)
    return _MEMO[memo]


MAX_SIDE = 8192  # pixels: a reference or keyframe larger than this is a mistake or a decompression bomb
MAX_PIXELS = MAX_SIDE * MAX_SIDE


def limit_pillow():
    """Pillow, told to refuse (not warn of) images over MAX_PIXELS: every module that opens a
    picture from a script or a server calls this. Returns the Image module."""
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    return Image


def _image(path: Path) -> str | None:
    from PIL import UnidentifiedImageError

    Image = limit_pillow()
    try:
        with Image.open(path) as im:
            w, h = im.size  # from the header: nothing is decoded before the size is known
            if w > MAX_SIDE or h > MAX_SIDE:
                return f"is {w}x{h} pixels; the most is {MAX_SIDE} on a side"
            im.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        return f"is larger than {MAX_SIDE}x{MAX_SIDE} pixels"
    except UnidentifiedImageError:
        return "is not an image"
    except (OSError, SyntaxError, ValueError) as e:  # Pillow reports damage as any of these
        return f"is a damaged image ({e})"
    if w < 2 or h < 2:
        return f"is only {w}x{h} pixels"
    return None


def _streams(path: Path) -> tuple[str, float | None] | None:
    """What `ffmpeg -i` says of the file's streams, and its duration; None if ffmpeg cannot read it."""
    try:
        ff = find_ffmpeg()
    except ToolMissing:
        return "", None  # no ffmpeg: the build will say so; nothing to check with here
    out = subprocess.run([ff.path, "-hide_banner", "-i", str(path)], capture_output=True, text=True,
                         errors="replace", timeout=60).stderr
    streams = "\n".join(line for line in out.splitlines() if re.match(r"\s*Stream #", line))
    if not streams:
        return None
    m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", out)
    duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None
    return streams, duration


def _stream_of(path: Path, kind: str) -> str | None:
    found = _streams(path)
    if found is None:
        return f"is not {'an' if kind == 'audio' else 'a'} {kind} file ffmpeg can read"
    streams, duration = found
    if not streams:
        return None
    # a still image has a video stream too: a clip must last longer than one frame
    if f": {kind.capitalize()}:" not in streams or (kind == "video" and re.search(r"Video: (png|mjpeg|webp)", streams)):
        return f"has no {kind} in it"
    if duration is not None and duration <= 0:
        return "lasts no time at all"
    return None


_PROBES = {
    "image": _image,
    "audio": lambda p: _stream_of(p, "audio"),
    "video": lambda p: _stream_of(p, "video"),
}
