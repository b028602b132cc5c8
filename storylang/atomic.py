"""Atomic file writes: a temporary name in the same directory, then a rename.

A build killed half-way never leaves a truncated file under a name a later build trusts.
"""

from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path


PART = ".part"  # every temporary file ends so; a later build or `storyc clean` removes leftovers


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: Path, suffix: str = "", through_links: bool = False):
    """Yield a temporary path next to `target`; rename it over `target` if the block succeeds.

    A symlink is replaced by the new file, so that a link planted in a build folder never makes
    storyc write elsewhere; with `through_links` (a file the user named, as `storyc fmt` does) its
    target is replaced and the link stays. The file keeps the mode it had, and a new file gets the
    usual mode (0666 less the umask), not mkstemp's 0600.
    """
    target = Path(os.path.realpath(target)) if through_links else Path(os.path.realpath(target.parent)) / target.name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode) if not target.is_symlink() else 0o666 & ~_umask()
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    # the writer's pid in the name tells a killed build's leftover from a running one's file
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.pid{os.getpid()}.", suffix=(suffix or target.suffix) + PART,
                               dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_bytes(target: Path, data: bytes, through_links: bool = False) -> None:
    with atomic_path(target, through_links=through_links) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str, through_links: bool = False) -> None:
    write_bytes(target, text.encode("utf-8"), through_links)
