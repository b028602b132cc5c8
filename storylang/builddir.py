"""The build directory next to a script: its cache, a lock per film, scratch space, leftovers.

Every temporary file is written as `.<name>.pid<pid>.<random><suffix>.part` (see atomic.py) and
every scratch directory as `tmp/<pid>-<random>`, so that whatever a killed build left behind
can be told from what a running one is writing: a leftover's process is gone. The next build
and `storyc clean` remove them.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from storylang import atomic
from storylang.diagnostics import OneLineError

_PART = re.compile(r"^\..*\.pid(\d+)\..*\.part$")
_SCRATCH = re.compile(r"^(\d+)-")


def build_root(script: Path, create: bool = True) -> Path:
    """The one build directory next to a script (ignored by git); its cache is shared by the films there."""
    root = script.resolve().parent / "build"
    if create and not (root / ".gitignore").is_file():
        atomic.write_text(root / ".gitignore", "# storyc build outputs\n*\n")
    return root


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def leftovers(root: Path, extra: tuple[Path, ...] = ()) -> list[Path]:
    """Partial files and scratch directories under `root` (and partial files in `extra` folders)
    whose writing process is gone."""
    found = []
    if root.is_dir():
        for p in root.rglob("*.part"):
            m = _PART.match(p.name)
            if m and not _alive(int(m.group(1))):
                found.append(p)
        scratch = root / "tmp"
        if scratch.is_dir():
            for d in scratch.iterdir():
                m = _SCRATCH.match(d.name)
                if m and not _alive(int(m.group(1))):
                    found.append(d)
    for folder in extra:
        if folder.is_dir():
            for p in folder.glob(".*.part"):
                m = _PART.match(p.name)
                if m and not _alive(int(m.group(1))):
                    found.append(p)
    return sorted(found)


def remove(paths: list[Path]) -> int:
    """Delete files and directories; returns the bytes freed."""
    freed = 0
    for p in paths:
        try:
            if p.is_dir() and not p.is_symlink():
                freed += sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
                shutil.rmtree(p, ignore_errors=True)
            else:
                freed += p.lstat().st_size
                p.unlink()
        except FileNotFoundError:
            pass
    return freed


@contextmanager
def scratch(root: Path):
    """A scratch directory for one build (named pipes, metadata files), removed afterwards."""
    parent = root / "tmp"
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


class Busy(OneLineError):
    """Another build of the same film holds its lock."""


@contextmanager
def film_lock(film_dir: Path, wait: bool = True, on_wait=None):
    """Hold the film's lock for a build; a second build of the same film waits (or raises Busy)."""
    film_dir.mkdir(parents=True, exist_ok=True)
    path = film_dir / ".lock"
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another build"
            if not wait:
                raise Busy(f"{film_dir.name} is being built by {holder}") from None
            if on_wait:
                on_wait(holder)
            fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        fh.truncate()
        fh.write(f"storyc (pid {os.getpid()})")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
