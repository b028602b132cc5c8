"""Diagnostics: what the writer sees when something is wrong.

Every stage reports problems as `Diagnostic` values carrying a source span; this module
renders them as text with the source line and a caret (rustc/Elm style) or as JSON.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

Severity = Literal["error", "warning", "note"]


class Span(BaseModel):
    """A region of a source file; lines and columns count from 1, end column exclusive."""

    model_config = ConfigDict(frozen=True)

    line: int
    column: int
    end_line: int
    end_column: int


class Diagnostic(BaseModel):
    model_config = ConfigDict(frozen=True)

    severity: Severity
    code: str
    message: str
    file: str
    span: Span | None = None
    hint: str | None = None


class StoryError(Exception):
    """The one root of every error a writer can see, raised by any stage that cannot go on.

    It carries diagnostics (with the file, line and column they are about, and the source
    texts to show them in), or, for trouble that is not in a script (a missing program, a
    failed encoder, a busy build), one line that names the thing and the fix.
    """

    def __init__(self, diagnostics: Sequence[Diagnostic] = (), sources: dict[str, str] | None = None,
                 message: str | None = None):
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        super().__init__(message or "; ".join(d.message for d in self.diagnostics))


class OneLineError(StoryError):
    """A StoryError that is one line of text, not about a place in a script."""

    def __init__(self, message: str):
        super().__init__(message=message)


def did_you_mean(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The closest of `choices` to `word`, or None when nothing is close."""
    choices = list(choices)
    lowered = {c.lower(): c for c in choices}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
    return lowered[found[0]] if found else None


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)


def sort_key(d: Diagnostic) -> tuple:
    s = d.span
    return (d.file, s.line if s else 0, s.column if s else 0, d.code)


def render_text(diagnostics: Iterable[Diagnostic], sources: dict[str, str]) -> str:
    """Render diagnostics as text: a one-line summary, the source line, a caret and a hint."""
    out: list[str] = []
    for d in diagnostics:
        where = d.file
        if d.span:
            where = f"{d.file}:{d.span.line}:{d.span.column}"
        out.append(f"{where}: {d.severity}: {d.message}")
        text = sources.get(d.file)
        if d.span and text is not None:
            lines = text.split("\n")
            if 1 <= d.span.line <= len(lines):
                src = lines[d.span.line - 1].replace("\t", " ")
                gutter = str(d.span.line)
                pad = " " * len(gutter)
                start = max(d.span.column, 1)
                if d.span.end_line == d.span.line:
                    width = max(d.span.end_column - start, 1)
                else:
                    width = max(len(src) - start + 1, 1)
                out.append(f"{pad} |")
                out.append(f"{gutter} | {src}")
                out.append(f"{pad} | {' ' * (start - 1)}{'^' * width}")
        if d.hint:
            out.append(f"  = hint: {d.hint}")
    return "\n".join(out)


def render_json(diagnostics: Iterable[Diagnostic]) -> str:
    """Render diagnostics as a JSON array, one flat object each (for editors and CI)."""
    items = []
    for d in diagnostics:
        item = {"severity": d.severity, "code": d.code, "message": d.message, "file": d.file}
        if d.span:
            item.update(
                line=d.span.line,
                column=d.span.column,
                end_line=d.span.end_line,
                end_column=d.span.end_column,
            )
        if d.hint:
            item["hint"] = d.hint
        items.append(item)
    return json.dumps(items, indent=2, ensure_ascii=False)
