"""Content-addressed artifact store: an artifact's name is the digest of what made it.

A key is the SHA-256 of the canonical JSON (sorted keys) of the data a stage consumes,
the digests of the files it reads and the stage's version string. Nothing else goes in:
not shot numbers, not positions, not paths of the build directory.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def canonical_json(data) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(data) -> str:
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes (remembered per path, size and modification time)."""
    st = path.stat()
    memo = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    found = _FILE_DIGESTS.get(memo)
    if found is None:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        found = _FILE_DIGESTS[memo] = h.hexdigest()
    return found


def _files(top: str):
    """The files under `top` (not those whose names start with a dot: partial writes, the lock)."""
    try:
        listing = list(os.scandir(top))
    except (FileNotFoundError, NotADirectoryError):
        return
    for entry in listing:
        if entry.is_dir(follow_symlinks=False):
            yield from _files(entry.path)
        elif entry.is_file(follow_symlinks=False) and not entry.name.startswith("."):
            yield entry


class Cache:
    def __init__(self, root: Path):
        self.root = root

    def path(self, kind: str, key: str, suffix: str) -> Path:
        return self.root / kind / key[:2] / f"{key}{suffix}"

    def touch(self, paths) -> None:
        """Mark artifacts as just used (their modification time is the cache's use clock)."""
        for p in paths:
            try:
                os.utime(p)
            except OSError:
                pass

    def entries(self) -> list[tuple[float, int, list[str]]]:
        """(last use, bytes, files) per artifact: a key's files (a WAV and its record) go together;
        the files' paths are real (the cache folder resolved).

        Every build reads the whole cache here, so it walks with os.scandir and keeps paths as
        strings (docs/build.md: "Size")."""
        groups: dict[tuple[str, str], list] = {}
        for entry in _files(str(self.root.resolve())):
            st = entry.stat(follow_symlinks=False)
            group = groups.setdefault((os.path.dirname(entry.path), entry.name.split(".", 1)[0]), [0.0, 0, []])
            group[0] = max(group[0], st.st_mtime)
            group[1] += st.st_size
            group[2].append(entry.path)
        return [(used, size, files) for used, size, files in groups.values()]

    def trim(self, limit: int, keep: set[Path]) -> tuple[int, int]:
        """Remove the least recently used artifacts until the cache holds at most `limit` bytes;
        never those in `keep` (what the build just used). Returns (artifacts removed, bytes freed)."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        if total <= limit:
            return 0, 0
        keep_real = {str(p.resolve()) for p in keep}
        removed = freed = 0
        for _, size, files in sorted(entries, key=lambda e: e[0]):
            if total <= limit:
                break
            if any(f in keep_real for f in files):
                continue
            for f in files:
                Path(f).unlink(missing_ok=True)
            total -= size
            freed += size
            removed += 1
        return removed, freed

