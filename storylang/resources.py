"""Where the shipped grammar and templates live, in an installed package and in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _package_dir(name: str) -> Path:
    # Installed: pyproject maps the top-level grammar/ and templates/ folders into the package
    # (storylang/grammar, storylang/templates). In a checkout they stay at the top level.
    installed = _PACKAGE / name
    return installed if installed.is_dir() else _PACKAGE.parent / name


def grammar_path() -> Path:
    return _package_dir("grammar") / "story.lark"


def templates_dir() -> Path:
    return _package_dir("templates")
