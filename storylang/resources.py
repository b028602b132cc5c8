"""Where the shipped grammar and templates live, in a checkout and in an installed package."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _package_dir(name: str) -> Path:
    # Installed: storylang/grammar and storylang/templates are package data (pyproject maps
    # the top-level folders there). A bare checkout on sys.path falls back to the folders.
    try:
        found = Path(str(resources.files(f"storylang.{name}")))
        if found.is_dir():
            return found
    except (ModuleNotFoundError, TypeError):
        pass
    return Path(__file__).resolve().parent.parent / name


def grammar_path() -> Path:
    return _package_dir("grammar") / "story.lark"


def templates_dir() -> Path:
    return _package_dir("templates")
