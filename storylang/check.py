"""`storyc check`: everything that can be known about a film before anything is rendered."""

from __future__ import annotations

from pathlib import Path

from storylang.diagnostics import Diagnostic
from storylang.film import Film
from storylang.resolve import resolve_file


def check_film(path: Path, display: str | None = None, object_info: str = "full",
               graphs: bool = True) -> tuple[Film | None, list[Diagnostic], dict[str, str]]:
    """Parse and resolve; for a film that names a model, also compile and validate every shot's graph."""
    film, diags, sources = resolve_file(path, display)
    if film is None or not graphs or not any(s.render.model for s in film.shots):
        return film, diags, sources
    from storylang.comfy.graphs import compile_film
    from storylang.comfy.schema import load_object_info

    info = load_object_info(object_info)
    for sg in compile_film(film, path.resolve().parent, info):
        diags.extend(sg.diagnostics)
    if any(d.severity == "error" for d in diags):
        film = None
    return film, diags, sources
