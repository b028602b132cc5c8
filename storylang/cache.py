"""Content-addressed artifact store: an artifact's name is the digest of what made it.

A key is the SHA-256 of the canonical JSON (sorted keys) of the data a stage consumes,
the digests of the files it reads and the stage's version string. Nothing else goes in:
not shot numbers, not positions, not paths of the build directory.
"""

from __future__ import annotations

import hashlib
import json
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

