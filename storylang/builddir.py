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
from storylang.filenames import BUILD_FOLDERS, film_folder

_PART = re.compile(r"^\..*\.pid(\d+)\..*\.part$")
_SCRATCH = re.compile(r"^(\d+)-")


LOCK = ".lock"  # in every film's folder: builds of one film take turns on it
MARKER = "# storyc build outputs\n"  # the first line of the .gitignore storyc writes in every build folder
LINKS_ENV = "STORYC_BUILD_LINK"  # "1": the user's own build folder may be a link (to a bigger disk, say)


class UnsafeBuildFolder(OneLineError):
    """A build folder with a link storyc did not make, which could make it write elsewhere."""


def build_root(script: Path, create: bool = True) -> Path:
    """The one build directory next to a script (ignored by git); its cache is shared by the films there.
    With `create`, it is made if need be and checked: storyc writes into no link it finds there."""
    root = script.resolve().parent / "build"
    if create:
        guard(root)
        if not (root / ".gitignore").is_file():
            try:
                atomic.write_text(root / ".gitignore", MARKER + "*\n")
            except OSError as e:
                raise OneLineError(f"cannot write in the build folder {root}: {e.strerror or e}; make it writable, "
                                   f"or build a copy of the project somewhere writable") from None
    return root


def _link_problem(path: Path) -> str:
    return (f"{path} is a link to {os.path.realpath(path)}; storyc does not write through links in its build "
            f"folder (remove the link)")


def guard(root: Path) -> None:
    """UnsafeBuildFolder if the build folder, or a folder storyc writes in under it (a film's, the
    cache's and its stages', scratch), is a link: a cloned project could point one anywhere. The
    folder itself may be a link when the user says so (STORYC_BUILD_LINK=1)."""
    if root.is_symlink() and os.environ.get(LINKS_ENV) != "1":
        raise UnsafeBuildFolder(_link_problem(root) + f", or set {LINKS_ENV}=1 if you made it")
    if not root.is_dir():
        return
    for top in _scan(root):
        if top.is_symlink():
            raise UnsafeBuildFolder(_link_problem(Path(top.path)))
        if top.is_dir():
            for entry in _scan(Path(top.path)):
                if entry.is_symlink() and (top.name == "cache" or entry.is_dir()):
                    raise UnsafeBuildFolder(_link_problem(Path(entry.path)))
                if top.name == "cache" and entry.is_dir():
                    for sub in _scan(Path(entry.path)):
                        if sub.is_symlink():
                            raise UnsafeBuildFolder(_link_problem(Path(sub.path)))


def _scan(folder: Path) -> list:
    try:
        return list(os.scandir(folder))
    except (NotADirectoryError, FileNotFoundError):
        return []


def is_ours(root: Path) -> bool:
    """Whether `root` carries the marker storyc writes in every build folder."""
    try:
        with open(root / ".gitignore", encoding="utf-8", errors="replace") as fh:
            return fh.readline() == MARKER
    except OSError:
        return False


def require_ours(root: Path) -> None:
    """UnsafeBuildFolder unless `root` is a build folder storyc made, and not a link the user did not allow
    (links inside it are removed as links)."""
    if root.is_symlink() and os.environ.get(LINKS_ENV) != "1":
        raise UnsafeBuildFolder(_link_problem(root) + f", or set {LINKS_ENV}=1 if you made it")
    if not is_ours(root):
        raise UnsafeBuildFolder(f"{root} has no storyc marker (build/.gitignore), so storyc did not make it; "
                                f"remove it yourself if it is yours")


def _made_by_storyc(entry) -> bool:
    """The build folder's own folders, a film's folder (it holds a .lock), a leftover partial file."""
    if entry.is_symlink():
        return True  # a link is removed as a link
    if entry.is_dir():
        return entry.name in BUILD_FOLDERS or os.path.isfile(os.path.join(entry.path, LOCK))
    return bool(_PART.match(entry.name))


def remove_all(root: Path) -> int:
    """What storyc made in a build folder of ours (see require_ours), never following a link (a link
    is removed, not its target); then the folder itself if it is empty and not the user's link.
    Returns the bytes freed."""
    require_ours(root)
    freed = remove([Path(e.path) for e in _scan(root) if _made_by_storyc(e)])
    (root / ".gitignore").unlink(missing_ok=True)
    if not root.is_symlink():
        try:
            root.rmdir()  # only when nothing of anyone else's is left in it
        except OSError:
            pass
    return freed


def film_dir(script: Path, create: bool = True) -> Path:
    """The folder of one film's outputs in the build folder (filenames.film_folder); made with its
    `.lock`, which also marks it as storyc's (see remove_all)."""
    folder = build_root(script, create) / film_folder(script.stem)
    if create:
        folder.mkdir(exist_ok=True)
        (folder / LOCK).touch()
    return folder


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
                freed += sum(e.stat(follow_symlinks=False).st_size for e in _walk(p))
                shutil.rmtree(p, ignore_errors=True)  # it unlinks links inside, never follows them
            else:
                freed += p.lstat().st_size
                p.unlink()
        except FileNotFoundError:
            pass
    return freed


def _walk(folder: Path):
    """Every file and link under `folder`, never following a link."""
    for entry in _scan(folder):
        if entry.is_dir(follow_symlinks=False):
            yield from _walk(Path(entry.path))
        else:
            yield entry


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
    path = film_dir / LOCK
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
