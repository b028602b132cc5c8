"""`storyc check`: everything that can be known about a film before anything is rendered."""

from __future__ import annotations

from pathlib import Path

from storylang.diagnostics import Diagnostic
from storylang.film import Film
from storylang.resolve import resolve_file


def check_film(path: Path, display: str | None = None) -> tuple[Film | None, list[Diagnostic], dict[str, str]]:
    """Parse and resolve; later stages add their own validation here (graphs against object_info)."""
    return resolve_file(path, display)
