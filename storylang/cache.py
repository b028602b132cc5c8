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

    def entries(self) -> list[tuple[float, int, list[Path]]]:
        """(last use, bytes, files) per artifact: a key's files (a WAV and its record) go together."""
        groups: dict[tuple[Path, str], list[Path]] = {}
        if not self.root.is_dir():
            return []
        for p in self.root.rglob("*"):
            if p.is_file() and not p.name.startswith("."):
                groups.setdefault((p.parent, p.name.split(".", 1)[0]), []).append(p)
        out = []
        for files in groups.values():
            stats = [f.stat() for f in files]
            out.append((max(st.st_mtime for st in stats), sum(st.st_size for st in stats), files))
        return out

    def trim(self, limit: int, keep: set[Path]) -> tuple[int, int]:
        """Remove the least recently used artifacts until the cache holds at most `limit` bytes;
        never those in `keep` (what the build just used). Returns (artifacts removed, bytes freed)."""
        entries = sorted(self.entries(), key=lambda e: e[0])
        total = sum(size for _, size, _ in entries)
        keep = {p.resolve() for p in keep}
        removed = freed = 0
        for _, size, files in entries:
            if total <= limit:
                break
            if any(f.resolve() in keep for f in files):
                continue
            for f in files:
                f.unlink(missing_ok=True)
            total -= size
            freed += size
            removed += 1
        return removed, freed

