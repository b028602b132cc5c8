"""Canonical formatting for `storyc fmt`: idempotent and meaning-preserving.

Two-space indentation, one space between values, two between settings on a line, a
blank line before each character and scene; comments and single blank lines are kept.
"""

from __future__ import annotations

import re

from storylang.syntax import tree as t

INDENT = "  "


def quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'


def value_text(v: t.Value) -> str:
    if v.kind == "string":
        return v.raw if v.raw.startswith('"""') else quote(v.text)
    return v.raw


def _setting(s: t.Setting) -> str:
    return " ".join([s.key, *(value_text(v) for v in s.values)])


def _last_line(node) -> int:
    if isinstance(node, t.SettingsLine):
        return max(s.span.end_line for s in node.settings)
    if isinstance(node, t.Dialogue):
        return node.speaker_span.line
    if isinstance(node, t.Transition):
        return max([node.span.line, *(v.span.end_line for v in node.values)])
    if isinstance(node, (t.Shot, t.Scene, t.Character)):
        return max([node.span.line, *(_last_line(b) for b in node.body)])
    return node.span.line


class _Printer:
    def __init__(self, script: t.Script, source: str, numbers: dict[int, str] | None):
        self.lines: list[str] = []
        self.source = source.split("\n")
        self.own = [c for c in script.comments if c.own_line]
        self.trailing = {c.span.line: c.text for c in script.comments if not c.own_line}
        self.last = 0  # last source line printed
        self.numbers = numbers or {}

    def blank_between(self, a: int, b: int) -> bool:
        return any(not self.source[i - 1].strip() for i in range(a + 1, b) if 0 < i <= len(self.source))

    def emit(self, depth: int, text: str, line: int, end_line: int | None = None, force_blank: bool = False):
        while self.own and self.own[0].span.line < line:
            c = self.own.pop(0)
            self._put(depth, c.text, c.span.line, c.span.line, force_blank)
            force_blank = False
        self._put(depth, text, line, end_line or line, force_blank)

    def _put(self, depth: int, text: str, line: int, end_line: int, force_blank: bool) -> None:
        if self.lines and (force_blank or self.blank_between(self.last, line)) and self.lines[-1] != "":
            self.lines.append("")
        trailing = self.trailing.pop(end_line, None)
        out = INDENT * depth + text
        if trailing and "\n" not in text:
            out += "  " + trailing
        elif trailing:
            out += "  " + trailing
        self.lines.append(out)
        self.last = max(self.last, end_line)

    def settings(self, depth: int, node: t.SettingsLine) -> None:
        self.emit(depth, "  ".join(_setting(s) for s in node.settings), node.span.line, _last_line(node))

    def transition(self, depth: int, node: t.Transition) -> None:
        self.emit(depth, " ".join([">", *(value_text(v) for v in node.values)]), node.span.line, _last_line(node))

    def dialogue(self, depth: int, node: t.Dialogue) -> None:
        cue = node.speaker + (f" ({node.parenthetical})" if node.parenthetical is not None else "")
        self.emit(depth, f"{cue}: {node.text}".rstrip(), node.span.line)

    def body(self, depth: int, items) -> None:
        for item in items:
            if isinstance(item, t.SettingsLine):
                self.settings(depth, item)
            elif isinstance(item, t.Transition):
                self.transition(depth, item)
            elif isinstance(item, t.Dialogue):
                self.dialogue(depth, item)
            elif isinstance(item, t.Shot):
                self.shot(depth, item)

    def shot(self, depth: int, node: t.Shot) -> None:
        parts = ["shot"]
        number = node.number or self.numbers.get(node.span.line)
        if number:
            parts.append(number)
        if node.name is not None:
            parts.append(value_text(node.name))
        parts.extend(v.raw for v in node.framing)
        if node.cast:
            parts.append("on " + " and ".join(c.name for c in node.cast))
        if node.duration:
            parts.append(node.duration.raw)
        self.emit(depth, " ".join(parts), node.span.line)
        self.body(depth + 1, node.body)

    def top(self, items) -> None:
        for item in items:
            if isinstance(item, t.SettingsLine):
                self.settings(0, item)
            elif isinstance(item, t.Transition):
                self.transition(0, item)
            elif isinstance(item, t.Character):
                self.emit(0, f"character {item.name}", item.span.line, force_blank=True)
                for line in item.body:
                    self.settings(1, line)
            elif isinstance(item, t.Scene):
                self.emit(0, item.heading, item.span.line, force_blank=True)
                self.body(1, item.body)
        for c in self.own:
            self._put(0, c.text, c.span.line, c.span.line, False)


def shot_numbers(script: t.Script) -> dict[int, str]:
    """Numbers for shots that have none (keyed by the shot's line); numbered shots never change.

    A shot after the last numbered one takes the next whole number; a shot between 12 and 13
    becomes 12A (then 12B...), the way production scripts lock their numbers.
    """
    shots = [s for item in script.items if isinstance(item, t.Scene) for s in item.body if isinstance(s, t.Shot)]
    used = {s.number for s in shots if s.number}
    out: dict[int, str] = {}
    prev: str | None = None

    def split(n: str) -> tuple[int, str]:
        m = re.fullmatch(r"(\d+)([A-Z]*)", n)
        return int(m.group(1)), m.group(2)

    for i, s in enumerate(shots):
        if s.number:
            prev = s.number
            continue
        nxt = next((x.number for x in shots[i + 1:] if x.number), None)
        base, suffix = split(prev) if prev else (0, "")
        candidate = None
        if nxt is None or split(nxt)[0] > base + 1:
            if str(base + 1) not in used:
                candidate = str(base + 1)
        if candidate is None:
            letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
            start = letters.index(suffix[-1]) + 1 if suffix else 0
            stem = f"{base}{suffix[:-1]}" if suffix else str(base)
            for letter in letters[start:]:
                if f"{stem}{letter}" not in used:
                    candidate = f"{stem}{letter}"
                    break
            else:
                candidate = f"{base}{suffix}A"
        used.add(candidate)
        out[s.span.line] = candidate
        prev = candidate
    return out


def statement_text(node, depth: int = 0) -> list[str]:
    """One statement's canonical lines (a settings line, dialogue, transition, or a shot's header
    alone: its body is not printed), indented `depth` levels; comments and blank lines left out."""
    p = _Printer(t.Script(file="", items=()), "", None)
    if isinstance(node, t.Shot):
        p.shot(depth, node.model_copy(update={"body": ()}))
    else:
        p.body(depth, [node])
    return p.lines


def format_script(script: t.Script, source: str, number_shots: bool = False) -> str:
    """The canonical text of a parsed script."""
    p = _Printer(script, source, shot_numbers(script) if number_shots else None)
    p.top(script.items)
    return "\n".join(p.lines).strip("\n") + "\n"
