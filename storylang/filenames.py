"""File names made from a writer's words (shot ids and names): never a path, always unique.

A script may come from a stranger, so a name from it never becomes a path component as it is:
`shot "../../x"` must not write outside the build folder, and two names must not meet in one
file. The safe form keeps letters, digits, `-` and `_`; anything else (a slash, a dot, a control
character, a reserved device name), or a name cut to length, adds a digest of the original.
"""

from __future__ import annotations

import hashlib
import re

MAX_STEM = 48
_KEEP = re.compile(r"[^\w-]+", re.ASCII)
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10))}


def safe_stem(text: str, fallback: str = "shot") -> str:
    """A file name stem for `text`: `[A-Za-z0-9_-]`, at most MAX_STEM characters, and the same text
    always gives the same stem; two different texts never do."""
    plain = _KEEP.sub("_", text).strip("_")[:MAX_STEM] or fallback
    if plain == text and plain.lower() not in _RESERVED:
        return plain
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{plain[:MAX_STEM - 9]}-{digest}"


BUILD_FOLDERS = frozenset({"cache", "tmp"})  # the build folder's own, shared by its films (builddir.py)


def film_folder(stem: str) -> str:
    """The folder of a film in the build folder: its script's stem, kept apart from the build's own
    folders (a film named cache.story must not live in the cache) and from hidden names. Adding a
    `~` to those, and to stems that end in one, keeps every film's folder its own."""
    if stem in BUILD_FOLDERS or stem.startswith(".") or stem.endswith("~") or not stem:
        return stem + "~"
    return stem
