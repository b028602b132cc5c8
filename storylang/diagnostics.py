"""Diagnostics: what the writer sees when something is wrong.

Every stage reports problems as `Diagnostic` values carrying a source span; this module
renders them as text with the source line and a caret (rustc/Elm style) or as JSON.
"""

from __future__ import annotations

import difflib
import json
import re
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


# C0 and C1 controls and DEL: escape sequences, bells, OSC titles/clipboard/links on a terminal
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROLS_AND_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(m: re.Match) -> str:
    return f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"


def inert(text: str, newlines: bool = False) -> str:
    """Text from a script or a server made harmless to show or write: every control character
    (ESC, BEL, C1 such as U+009B, and line breaks unless `newlines`) written as `\\x1b`. The one
    helper for the terminal, subtitles and tags."""
    return (_CONTROLS if newlines else _CONTROLS_AND_BREAKS).sub(_escaped, text)


def first_control(text: str) -> int:
    """The index of the first control character a script should not hold (not tab or newline), or -1."""
    m = _CONTROLS.search(text.replace("\t", " "))
    return m.start() if m else -1


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


LINE_SHOWN = 200  # a longer source line is cut around the caret: a 30 MB line is not printed


def _cut(line: str, at: int) -> str:
    return line if len(line) <= LINE_SHOWN + at else line[:at + LINE_SHOWN] + " …"


def _source_line(text: str, line: int) -> str | None:
    """Line `line` (from 1) of `text`, found without splitting the whole text (a file of three
    million short lines would cost hundreds of MB to split for one message)."""
    if line < 1:
        return None
    start = 0
    for _ in range(line - 1):
        start = text.find("\n", start) + 1
        if start == 0:
            return None
    end = text.find("\n", start)
    return text[start:] if end < 0 else text[start:end]


def render_text(diagnostics: Iterable[Diagnostic], sources: dict[str, str]) -> str:
    """Render diagnostics as text: a one-line summary, the source line, a caret and a hint."""
    out: list[str] = []
    for d in diagnostics:
        where = d.file
        if d.span:
            where = f"{d.file}:{d.span.line}:{d.span.column}"
        out.append(inert(f"{where}: {d.severity}: {d.message}"))
        text = sources.get(d.file)
        src = _source_line(text, d.span.line) if d.span and text is not None else None
        if src is not None:
            src = src.replace("\t", " ")
            gutter = str(d.span.line)
            pad = " " * len(gutter)
            start = max(d.span.column, 1)
            if d.span.end_line == d.span.line:
                width = max(d.span.end_column - start, 1)
            else:
                width = max(len(src) - start + 1, 1)
            # escapes are wider than what they stand for: the caret moves with them
            before, under = inert(src[:start - 1]), inert(src[start - 1:start - 1 + width])
            out.append(f"{pad} |")
            out.append(f"{gutter} | {_cut(inert(src), len(before))}")
            out.append(f"{pad} | {' ' * min(len(before), LINE_SHOWN)}{'^' * max(min(len(under), LINE_SHOWN), 1)}")
        if d.hint:
            out.append(inert(f"  = hint: {d.hint}"))
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
    # JSON escapes C0 itself; DEL and C1 too, so that a terminal showing it never acts on them
    return re.sub(r"[\x7f-\x9f\u2028\u2029]", lambda m: f"\\u{ord(m.group()):04x}",
                  json.dumps(items, indent=2, ensure_ascii=False))
