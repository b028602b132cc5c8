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
def atomic_path(target: Path, suffix: str = ""):
    """Yield a temporary path next to `target`; rename it over `target` if the block succeeds.

    A symlink is written through (its target is replaced, the link stays); the file keeps the
    mode it had, and a new file gets the usual mode (0666 less the umask), not mkstemp's 0600.
    """
    target = Path(os.path.realpath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
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


def write_bytes(target: Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))
