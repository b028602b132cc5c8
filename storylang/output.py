"""Where a film may be written: never over something that is not a film of ours.

`-o` refuses a directory, a device or pipe, and a path inside a regular file; it replaces a
file only if storylang wrote it (its MP4 metadata carries storyc's provenance) or with
`--force`.
"""

from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

MARK = b"storyc "  # the provenance comment every film of ours carries (see build.provenance)
MOOV_LIMIT = 256 << 20  # the moov box of a two-hour film is a few MB


def problem(path: Path, force: bool = False) -> str | None:
    """None if a film may be written at `path`, else what stands in the way and the fix."""
    for parent in path.parents:
        if parent.exists() or parent.is_symlink():
            if not parent.is_dir():
                return f"{parent} is a file, not a directory; choose another -o"
            break
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a directory; give -o a file name such as {path / 'film.mp4'}"
    if not stat.S_ISREG(st.st_mode):
        return f"{path} is not a regular file (a device or pipe); choose another -o"
    if not force and not written_by_storyc(path):
        return f"{path} exists and was not written by storyc; pass --force to replace it"
    return None


SIDECAR = ".provenance.json"  # provenance.SIDECAR: what storyc writes beside an output without room for it
HEAD = 1 << 20


def export_problem(path: Path, force: bool, inputs: set[Path]) -> str | None:
    """None if an export (a timeline, a board, a screenplay) may be written at `path`: never over
    the script or a file the film reads, not even with --force; over another file only if storyc
    wrote it (its provenance in it or beside it) or with --force."""
    real = Path(os.path.realpath(path))
    if real in {Path(os.path.realpath(p)) for p in inputs}:
        return f"{path} is a file the film reads; storyc never writes over it, choose another -o"
    if not os.path.lexists(path):
        return problem(path, force=True)
    found = problem(path, force=True)
    if found or force or _carries_provenance(path):
        return found
    return f"{path} exists and was not written by storyc; pass --force to replace it"


def _carries_provenance(path: Path) -> bool:
    if written_by_storyc(path) or path.with_name(path.name + SIDECAR).is_file():
        return True
    try:
        with open(path, "rb") as fh:
            return b"storylang" in fh.read(HEAD)
    except OSError:
        return False


def written_by_storyc(path: Path) -> bool:
    """Whether `path` is an MP4 whose metadata (in its moov box) carries storyc's mark."""
    try:
        with open(path, "rb") as fh:
            while True:
                head = fh.read(8)
                if len(head) < 8:
                    return False
                size, kind = struct.unpack(">I4s", head)
                header = 8
                if size == 1:
                    size = struct.unpack(">Q", fh.read(8))[0]
                    header = 16
                if size == 0 or size < header:
                    return False
                if kind == b"moov":
                    return size <= MOOV_LIMIT and MARK in fh.read(size - header)
                fh.seek(size - header, os.SEEK_CUR)
    except OSError:
        return False
