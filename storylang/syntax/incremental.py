"""Parse a file again after an edit, reusing the trees of the top-level items the edit left alone.

A script is a sequence of top-level items (settings lines, characters, scenes, transitions),
each starting at column 0 and owning the indented lines below it. An edit changes one or a few
of them; the language server and `storyc watch` parse after every edit, and on a long film the
whole parse costs hundreds of milliseconds. So the text is cut into pieces at the lines that
start an item, each piece is parsed alone (with blank lines before it, so its positions are the
file's), and a piece seen before is taken from memory, its positions moved if lines were added
or removed above it. Pieces are independent in the grammar, and each is parsed after the one
before it (the parser's "expected ..." hints depend on what came just before), so the result is
the tree and the diagnostics a whole parse gives. One difference: after a syntax error, the
lines set aside do not count in the span of the item before them.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from pydantic import BaseModel

from storylang.diagnostics import Diagnostic, Span
from storylang.syntax import tree as t
from storylang.syntax.parse import MAX_SYNTAX_ERRORS, parse_text

LONG_QUOTE = '"""'


@dataclass(frozen=True)
class Piece:
    """What parsing one piece gave, at the line it started on when it was parsed."""

    line: int
    items: tuple
    comments: tuple[t.Comment, ...]
    diagnostics: tuple[Diagnostic, ...]
    syntax_errors: int
    parsed: bool  # False when the parser gave up on the piece (too many errors)


# a line break before a line with no indent, not blank and no comment (searched from each line
# break, not tried at every character: a 30 MB line costs nothing)
_ITEM_START = re.compile(r"\n(?![ \t\n]|//)")


def split(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each top-level item with the blank and comment lines after it.

    A line starts an item when it has no indent, is not blank and is no comment. A long text
    (three quotes) may hold such lines, and whether three quotes open one depends on where the
    lexer stands (in a line of dialogue or a comment they are only text), so no cut is made from
    the first line holding three quotes to the last: a long text can neither open before the
    first nor close after the last."""
    first = text.find(LONG_QUOTE)
    if first >= 0:
        low, high = text.rfind("\n", 0, first) + 1, text.rfind("\n", 0, text.rfind(LONG_QUOTE)) + 1
    else:
        low = high = len(text)
    # searched before and after, never between (it may be millions of lines of a long text);
    # the lookahead sees two characters past the first range's end
    before = [m.end() for m in _ITEM_START.finditer(text, 0, low + 2) if m.end() <= low]
    after = [m.end() for m in _ITEM_START.finditer(text, high)]
    cuts = [0] + [c for c in before + after if c < len(text)] + [len(text)]
    out, line = [], 1
    for a, b in zip(cuts, cuts[1:]):
        out.append((line, text[a:b]))
        line += text.count("\n", a, b)
    return out


Context = tuple[int, tuple[str, ...]]  # (first line, the pieces' texts) of what a piece is parsed after


class Reparser:
    """Parses one file's successive versions; remembers the pieces of the latest one."""

    def __init__(self) -> None:
        self._known: dict[tuple[tuple[str, ...], str], Piece] = {}  # (texts parsed before it, its text) → piece
        self._chunks: set[str] = set()

    def _remember(self, known: dict) -> None:
        self._known = known
        self._chunks = {chunk for _, chunk in known}

    def parse(self, text: str, file: str) -> tuple[t.Script | None, list[Diagnostic]]:
        if not text.endswith("\n"):
            text += "\n"
        chunks = split(text)
        if sum(chunk not in self._chunks for _, chunk in chunks) * 2 > len(chunks):
            return self._parse_whole(text, file, chunks)  # mostly new: one parse costs less than many
        known, pieces, errors_seen = {}, [], 0
        for k, (line, chunk) in enumerate(chunks):
            before = _context(chunks, pieces, k)
            key = (before[1], chunk)
            piece = self._known.get(key)
            if piece is None:
                piece = _parse_piece(before, chunk, line, file)
            elif piece.line != line:
                piece = _moved(piece, line)
            errors_seen += piece.syntax_errors
            if not piece.parsed or errors_seen > MAX_SYNTAX_ERRORS:
                # the whole file's verdict, as one parse gives it (and no piece after this one is
                # parsed: each would be parsed after all the broken ones before it)
                self._remember({})
                return parse_text(text, file)
            known[key] = piece
            pieces.append(piece)
        self._remember(known)
        items = tuple(i for p in pieces for i in p.items)
        comments = tuple(c for p in pieces for c in p.comments)
        errors = [d for p in pieces for d in p.diagnostics[: p.syntax_errors]]
        others = [d for p in pieces for d in p.diagnostics[p.syntax_errors:]]
        script = t.Script.model_construct(file=file, items=items, comments=comments, recovered=bool(errors))
        return script, errors + others

    def _parse_whole(self, text: str, file: str, chunks: list[tuple[int, str]]):
        """Parse the whole text, and remember it cut into pieces: each piece's items, comments and
        diagnostics are those on its lines, as parsing it alone after the one before would give."""
        script, diags = parse_text(text, file)
        if script is None:
            self._remember({})
            return script, diags
        starts = [line for line, _ in chunks]
        buckets = [([], [], [], []) for _ in chunks]  # items, comments, syntax errors, other diagnostics
        for i in script.items:
            buckets[bisect_right(starts, i.span.line) - 1][0].append(i)
        for c in script.comments:
            buckets[bisect_right(starts, c.line) - 1][1].append(c)
        for d in diags:
            k = bisect_right(starts, d.span.line) - 1 if d.span is not None else 0
            buckets[k][3 if d.code in _NOT_SYNTAX else 2].append(d)
        known, pieces = {}, []
        for k, ((line, chunk), (items, comments, errors, others)) in enumerate(zip(chunks, buckets)):
            piece = Piece(line, tuple(items), tuple(comments), tuple(errors + others), len(errors), parsed=True)
            known[(_context(chunks, pieces, k)[1], chunk)] = piece
            pieces.append(piece)
        self._remember(known)
        return script, diags


def _context(chunks: list[tuple[int, str]], pieces: list[Piece], k: int) -> Context:
    """What piece k is parsed after: the piece before it, and further back past pieces that a
    syntax error set aside whole (the parser's state is then the one the last piece kept left it in)."""
    if k == 0:
        return 1, ()
    j = k - 1
    while j > 0 and not pieces[j].items:
        j -= 1
    return chunks[j][0], tuple(chunk for _, chunk in chunks[j:k])


def _parse_piece(before: Context, chunk: str, line: int, file: str) -> Piece:
    """Parse `chunk` after the piece before it, so that the parser is in the state a whole parse
    would have it in (its "expected ..." hints depend on the tokens just before), then keep what
    is on the chunk's own lines."""
    first, context = before
    script, diags = parse_text("\n" * (first - 1) + "".join(context) + chunk, file)
    diags = [d for d in diags if d.span is None or d.span.line >= line]
    if script is None:
        return Piece(line, (), (), tuple(diags), len(diags), parsed=False)
    items = tuple(i for i in script.items if i.span.line >= line)
    comments = tuple(c for c in script.comments if c.line >= line)
    errors = sum(1 for d in diags if d.code not in _NOT_SYNTAX)
    return Piece(line, items, comments, tuple(diags), errors, parsed=True)


# diagnostics made while building the tree, after a successful parse (parse.py's _Context)
_NOT_SYNTAX = frozenset({"unknown-escape"})


def _moved(piece: Piece, line: int) -> Piece:
    delta = line - piece.line
    return Piece(
        line=line,
        items=tuple(_shift(i, delta) for i in piece.items),
        comments=tuple(c._replace(line=c.line + delta) for c in piece.comments),
        diagnostics=tuple(_shift(d, delta) for d in piece.diagnostics),
        syntax_errors=piece.syntax_errors,
        parsed=piece.parsed,
    )


def _shift(value, delta: int):
    """The same node with every span `delta` lines further down.

    Built as pydantic's model_construct builds a model (its own dict and fields-set, no
    validation), written out because it is called for every node of the film after an Enter."""
    cls = type(value)
    if cls is Span:
        d = value.__dict__
        fields = {"line": d["line"] + delta, "column": d["column"], "end_line": d["end_line"] + delta,
                  "end_column": d["end_column"]}
    elif isinstance(value, BaseModel):
        fields = {k: _shift(v, delta) if isinstance(v, (BaseModel, tuple)) else v for k, v in value.__dict__.items()}
    elif cls is tuple:
        return tuple(_shift(v, delta) if isinstance(v, (BaseModel, tuple)) else v for v in value)
    else:
        return value
    new = cls.__new__(cls)
    object.__setattr__(new, "__dict__", fields)
    object.__setattr__(new, "__pydantic_fields_set__", value.__pydantic_fields_set__)
    object.__setattr__(new, "__pydantic_extra__", None)
    object.__setattr__(new, "__pydantic_private__", None)
    return new
