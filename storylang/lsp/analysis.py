"""What the language server knows of a script, as plain data: no protocol here.

An Analysis is one load and resolve of a script (with the editor's unsaved text for every
open file), made on each change. It answers the editor's questions by position: the
character or shot under the cursor, every place a character is named, the outline. The
server (server.py) turns these answers into LSP messages; the tests call both.

Positions here are the script's own: lines and columns from 1, columns in characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from storylang.diagnostics import Diagnostic, Span
from storylang.film import Film
from storylang.loader import Loaded, Loader
from storylang.syntax import tree as t


class OverlayLoader(Loader):
    """A loader that reads an editor's unsaved text for the files it has open."""

    def __init__(self) -> None:
        super().__init__()
        self.texts: dict[Path, str] = {}

    def read_bytes(self, path: Path) -> bytes:
        text = self.texts.get(path.resolve())
        return text.encode("utf-8") if text is not None else path.read_bytes()


@dataclass(frozen=True)
class Place:
    """A name where it is written: its file (the loader's display name, an absolute path) and span."""

    file: str
    span: Span
    kind: str  # "declaration", "cue", "cast"


@dataclass
class Analysis:
    path: Path
    film: Film | None
    diagnostics: list[Diagnostic]
    loaded: Loaded
    trees: dict[str, t.Script] = field(default_factory=dict)  # by display name (absolute path)
    draft: Film | None = None  # the film, or while the script has errors what of it resolved


    # ------------------------------------------------------------------ names

    def characters(self) -> list[str]:
        return sorted({node.name for _, node in self._walk() if isinstance(node, t.Character)})

    def places(self, name: str) -> list[Place]:
        """Every place the character `name` is written: its declaration, its cues, its `on` lists."""
        out = []
        for file, node in self._walk():
            if isinstance(node, t.Character) and node.name == name:
                out.append(Place(file, node.name_span, "declaration"))
            elif isinstance(node, t.Dialogue) and node.speaker == name:
                out.append(Place(file, node.speaker_span, "cue"))
            elif isinstance(node, t.Shot):
                out += [Place(file, c.span, "cast") for c in node.cast if c.name == name]
        return out

    def name_at(self, file: str, line: int, column: int) -> str | None:
        """The character named at this position (declaration, cue or `on` list), if any."""
        for place_file, node in self._walk():
            if place_file != file:
                continue
            for name, span in _names_of(node):
                if _inside(span, line, column):
                    return name
        return None

    def shot_at(self, file: str, line: int):
        """The film's shot whose heading is on this line, else the shot whose body holds it (of the
        draft while the script has errors: a shot with errors is none)."""
        if self.draft is None:
            return None
        here = [s for s in self.draft.shots if s.where.file == file and s.where.line <= line]
        found = max(here, key=lambda s: s.where.line) if here else None
        if found is not None and self.film is None and self._shot_line(file, line) != found.where.line:
            return None  # the shot written here did not resolve: the one above it is not the answer
        return found

    def _shot_line(self, file: str, line: int) -> int | None:
        """The heading line of the shot whose text holds this line, from the syntax tree (a shot's
        span runs on into the indent of the line after it: the latest heading wins)."""
        best = None
        for place_file, node in self._walk():
            if place_file == file and isinstance(node, t.Shot) and node.span.line <= line:
                end = _whole(node)
                if (line < end.end_line or line == end.end_line and end.end_column > 1) and (
                        best is None or node.span.line > best):
                    best = node.span.line
        return best

    def include_at(self, file: str, line: int, column: int) -> Path | None:
        """The file an `include "..."` at this position names."""
        tree = self.trees.get(file)
        for item in tree.items if tree else ():
            if isinstance(item, t.SettingsLine):
                for s in item.settings:
                    if s.key == "include" and s.values and _inside(s.values[0].span, line, column):
                        return (Path(file).parent / s.values[0].text).resolve()
        return None

    def setting_at(self, file: str, line: int, column: int) -> tuple[t.Setting, t.Value | None] | None:
        """The statement at this position, and the value under the cursor (None on its key)."""
        for _, node in self._walk_file(file):
            for s in getattr(node, "settings", ()) or ():
                if s.span.line <= line <= s.span.end_line and _inside(s.span, line, column):
                    return s, next((v for v in s.values if _inside(v.span, line, column)), None)
        return None

    # ------------------------------------------------------------------ outline

    def symbols(self, file: str) -> list[dict]:
        """Scenes with their shots, and characters, of one file: name, kind, span, children."""
        tree = self.trees.get(file)
        out = []
        for item in tree.items if tree else ():
            if isinstance(item, t.Character):
                out.append({"name": item.name, "kind": "character", "span": _whole(item), "select": item.name_span,
                            "children": []})
            elif isinstance(item, t.Scene):
                shots = [{"name": _shot_title(s), "kind": "shot", "span": _whole(s), "select": s.span, "children": []}
                         for s in item.body if isinstance(s, t.Shot)]
                out.append({"name": item.heading, "kind": "scene", "span": _whole(item), "select": item.span,
                            "children": shots})
        return out

    def folds(self, file: str) -> list[tuple[int, int]]:
        """(first line, last line) of every character, scene and shot that spans lines."""
        out = []
        for _, node in self._walk_file(file):
            if isinstance(node, (t.Character, t.Scene, t.Shot)):
                whole = _whole(node)
                if whole.end_line > whole.line:
                    out.append((whole.line, whole.end_line))
        return sorted(out)

    # ------------------------------------------------------------------ the trees

    def _walk(self):
        for file in self.trees:
            yield from self._walk_file(file)

    def _walk_file(self, file: str):
        tree = self.trees.get(file)

        def walk(node):
            yield file, node
            for child in getattr(node, "body", ()) or ():
                yield from walk(child)

        for item in tree.items if tree else ():
            yield from walk(item)


def analyse(path: Path, loader: OverlayLoader) -> Analysis:
    """Load and resolve the script at `path` (and what it includes), its unsaved text included."""
    from storylang.resolve import resolve_draft

    display = str(path)
    loaded = loader.load(path, display)
    film, draft, diagnostics = resolve_draft(loaded, path.resolve().parent, display)
    trees = {}
    for name in loaded.sources:
        tree, _, _ = loader.parse(Path(name), name)
        if tree is not None:
            trees[name] = tree
    return Analysis(path=path, film=film, diagnostics=diagnostics, loaded=loaded, trees=trees, draft=draft)


def _names_of(node) -> list[tuple[str, Span]]:
    if isinstance(node, t.Character):
        return [(node.name, node.name_span)]
    if isinstance(node, t.Dialogue):
        return [(node.speaker, node.speaker_span)]
    if isinstance(node, t.Shot):
        return [(c.name, c.span) for c in node.cast]
    return []


def _inside(span: Span, line: int, column: int) -> bool:
    after_start = (line, column) >= (span.line, span.column)
    before_end = (line, column) <= (span.end_line, span.end_column)
    return after_start and before_end


def _whole(node) -> Span:
    """A node's span with its body's."""
    end = node.span
    for child in getattr(node, "body", ()) or ():
        c = _whole(child)
        if (c.end_line, c.end_column) > (end.end_line, end.end_column):
            end = c
    return Span(line=node.span.line, column=node.span.column, end_line=end.end_line, end_column=end.end_column)


def _shot_title(s: t.Shot) -> str:
    framing = " ".join(v.text for v in s.framing)
    return " ".join(x for x in (f"shot {s.number}" if s.number else "shot", framing) if x)


NAME = re.compile(r"[A-Z][A-Z0-9 .'\-]*[A-Z0-9]|[A-Z]")


def valid_name(name: str) -> bool:
    """A character's name as the language writes it: capitals, digits, spaces, . ' -."""
    return bool(NAME.fullmatch(name))

