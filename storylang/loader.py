"""Reading scripts: files → decoded text → syntax trees, includes expanded in place.

The resolver receives what this module loads and never reads a script itself. Parsed files
are remembered by their content, so a process that loads the same film again (a rebuild,
`storyc watch`) parses only the files that changed.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from storylang import trust
from storylang.diagnostics import Diagnostic, Span, did_you_mean
from storylang.syntax import tree as t
from storylang.syntax.incremental import Reparser
from storylang.syntax.parse import decode_source, paused_gc


@dataclass(frozen=True)
class ScriptFile:
    display: str  # the file name shown in messages
    path: Path  # absolute


@dataclass
class Loaded:
    """A script and its includes: items in order with the file each came from."""

    items: list[tuple[ScriptFile, object]] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # every script read, relative to the film root, main first
    sources: dict[str, str] = field(default_factory=dict)  # display name → text, for messages
    diagnostics: list[Diagnostic] = field(default_factory=list)
    recovered: bool = False  # some statement had a syntax error and was set aside
    reads: trust.Reads | None = None  # the folders its scripts and media may be read from


MAX_INCLUDE_DEPTH = 32  # deeper is a mistake or an attack, never a film

_NOT_FILES = ((stat.S_ISDIR, "is a folder, not a file"), (stat.S_ISFIFO, "is a named pipe, not a file"),
              (stat.S_ISCHR, "is a device, not a file"), (stat.S_ISBLK, "is a device, not a file"),
              (stat.S_ISSOCK, "is a socket, not a file"))


def not_a_file(path: Path) -> str | None:
    """What `path` is when it exists but is not a regular file (a folder, a device, a pipe), else None."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((what for test, what in _NOT_FILES if test(mode)), None)


def unreadable_file(src: ScriptFile, v: t.Value, what: str, reads: trust.Reads) -> Diagnostic | None:
    """The one diagnostic for a named file that may not or cannot be read: outside the project,
    not a regular file, or missing. None when it is a regular file inside the allowed folders."""
    target = src.path.parent / v.text
    if "\x00" in v.text or not reads.allows(target):
        return Diagnostic(severity="error", code="outside-project", file=src.display, span=v.span,
                          message=f'{what} "{v.text}" is outside the project', hint=trust.outside_hint(reads))
    kind = not_a_file(target)
    if kind:
        return Diagnostic(severity="error", code="not-a-file", message=f'{what} "{v.text}" {kind}',
                          file=src.display, span=v.span, hint="name a file")
    if not target.is_file():
        return missing_file(src, v, what)
    return None


def missing_file(src: ScriptFile, v: t.Value, what: str) -> Diagnostic:
    """`what "name" not found`, with the closest file name in that folder as the hint."""
    target = src.path.parent / v.text
    hint = f"paths are relative to {Path(src.display).name}"
    if target.parent.is_dir():
        guess = did_you_mean(target.name, [p.name for p in target.parent.iterdir()])
        if guess:
            hint = f'did you mean "{(Path(v.text).parent / guess).as_posix()}"?'
    return Diagnostic(severity="error", code="missing-file", message=f'{what} "{v.text}" not found', file=src.display,
                      span=v.span, hint=hint)


class Loader:
    """Loads scripts; one instance remembers the latest parse of each file, by name and content."""

    def __init__(self) -> None:
        # display name → (content digest, what parsing it gave): the latest version of each file
        self._parsed: dict[str, tuple[str, tuple[t.Script | None, list[Diagnostic], str | None]]] = {}
        self._reparsers: dict[str, Reparser] = {}  # display name → the pieces of its latest parse

    def read_bytes(self, path: Path) -> bytes:
        """A file's bytes (the language server reads an editor's unsaved text instead)."""
        return path.read_bytes()

    def parse(self, path: Path, display: str) -> tuple[t.Script | None, list[Diagnostic], str | None]:
        """(tree, diagnostics, normalised text) of one file; parsed once per content."""
        try:
            data = self.read_bytes(path)
        except OSError as e:
            reason = e.strerror or str(e)
            return None, [Diagnostic(severity="error", code="unreadable", message=f"cannot read {display}: {reason}",
                                     file=display)], None
        content = hashlib.sha256(data).hexdigest()
        known = self._parsed.get(display)
        if known is None or known[0] != content:
            text, diags = decode_source(data, display)
            tree = None
            if text is not None and not diags:
                with paused_gc():
                    tree, diags = self._reparsers.setdefault(display, Reparser()).parse(text, display)
            known = self._parsed[display] = (content, (tree, diags, text))
        tree, diags, text = known[1]
        return tree, list(diags), text

    def load(self, path: Path, display: str | None = None, reads: trust.Reads | None = None) -> Loaded:
        """A script and, in place, everything it includes (only from the folders `reads` allows:
        by default its project and what the user allowed)."""
        display = display or str(path)
        out = Loaded(reads=reads or trust.reads_for(path))
        root = path.resolve().parent
        out.items = self._load(path, display, (path.resolve(),), root, out)
        return out

    def _load(self, path: Path, display: str, stack: tuple[Path, ...], root: Path, out: Loaded):
        tree, diags, text = self.parse(path, display)
        out.diagnostics.extend(diags)
        if text is not None:
            out.sources[display] = text
        if tree is None:
            return []
        out.recovered = out.recovered or tree.recovered
        src = ScriptFile(display, path.resolve())
        out.files.append(Path(os.path.relpath(src.path, root)).as_posix())
        items: list[tuple[ScriptFile, object]] = []
        for item in tree.items:
            if isinstance(item, t.SettingsLine) and any(s.key == "include" for s in item.settings):
                rest = tuple(s for s in item.settings if s.key != "include")
                if rest:
                    items.append((src, item.model_copy(update={"settings": rest})))
                for s in item.settings:
                    if s.key == "include":
                        items.extend(self._include(src, s, stack, root, out))
            else:
                items.append((src, item))
        return items

    def _include(self, src: ScriptFile, s: t.Setting, stack: tuple[Path, ...], root: Path, out: Loaded):
        def error(span: Span, code: str, message: str, hint: str) -> list:
            out.diagnostics.append(Diagnostic(severity="error", code=code, message=message, file=src.display,
                                              span=span, hint=hint))
            return []

        if len(s.values) != 1 or s.values[0].kind != "string":
            return error(s.span, "include", "include needs one file name in quotes", 'include "characters.story"')
        v = s.values[0]
        problem = unreadable_file(src, v, "included script", out.reads)
        if problem:
            out.diagnostics.append(problem)
            return []
        target = (src.path.parent / v.text).resolve()
        display = os.path.normpath(os.path.join(os.path.dirname(src.display), v.text))
        if target in stack:
            chain = " → ".join(p.name for p in (*stack, target))
            return error(v.span, "include-cycle", f"this include makes a cycle: {chain}",
                         "a file cannot include itself, directly or through other files")
        if len(stack) >= MAX_INCLUDE_DEPTH:
            chain = " → ".join(p.name for p in (*stack[:2], Path("..."), *stack[-2:], target))
            return error(v.span, "include-depth", f"includes nest deeper than {MAX_INCLUDE_DEPTH} files: {chain}",
                         "include the files from one script instead of each from the one before")
        return self._load(target, display, (*stack, target), root, out)
