"""Fountain (fountain.io), both ways: a screenplay a writer can open in any Fountain app, and
a Fountain screenplay turned into a `.story` script.

Export writes what a screenplay shows (title page, scene headings, action, dialogue with
parentheticals, narration as `NARRATOR (V.O.)`, transitions) and keeps everything else of
the script (settings, shot headers, camera moves, LoRAs, exact transitions) verbatim in
`/* storylang ... */` boneyard blocks, which Fountain apps never print. Import reads such
blocks back as they are, so `import(export(x))` is the same film; a screenplay without them
is adapted with guesses (framing, cast, lengths from reading time), each left as a note.
Parsing is `fountain-parser`'s (docs/dependencies.md says why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from storylang.diagnostics import OneLineError
from storylang.syntax import tree as t
from storylang.syntax.format import quote, statement_text

MARK = "storylang"
NARRATOR = "NARRATOR"
WORDS_PER_SECOND = 2.5  # reading aloud, for shot lengths of an imported screenplay


class FountainError(OneLineError):
    pass


# ---------------------------------------------------------------- export


def _clean(text: str) -> str:
    return " ".join(text.split())


_MARKUP = re.compile(r"(\*|_|\\)")
_AMBIGUOUS_START = re.compile(r"^(INT|EXT|EST|I/E|INT\./EXT|INT/EXT)[ .]|^[.!@~=#>]", re.I)


def _escaped(text: str) -> str:
    """Fountain text that reads back as `text`: emphasis characters and backslashes escaped."""
    return _MARKUP.sub(r"\\\1", text)


def _shows(text: str) -> bool:
    """Whether text can stand in the screenplay itself (else it stays in the boneyard)."""
    return bool(text) and text == _clean(text) and not any(x in text for x in ("/*", "*/", "[[", "]]"))


def _reads_back(lines: list[str], expected: list[tuple[str, str]]) -> bool:
    """Whether a Fountain parser reads these lines as exactly the expected elements (kind, plain text):
    what a screenplay shows must import back as itself, or it stays in the boneyard."""
    from fountain_parser import parse

    # read where it stands, after a scene heading: alone at the top of a file, a line such as
    # "His minion approaches offscreen:" would be taken for a title page's key
    play = parse(_CONTEXT + "\n".join(lines) + "\n")
    if play.title_page or not play.elements or type(play.elements[0]).__name__ != "SceneHeading":
        return False
    got = [(type(e).__name__, _read_text(e)) for e in play.elements[1:]]
    return got == expected


_CONTEXT = "EXT. CONTEXT - DAY\n\n"


def _read_text(e) -> str:
    """An element's words as the importer takes them."""
    kind = type(e).__name__
    if kind == "Dialogue":
        return plain(e.text.strip().strip("~").strip())
    if kind == "Action":
        return plain(e.text[1:] if e.text.startswith("!") else e.text)
    if kind == "Character":
        return e.name.strip().lstrip("@")
    return plain(getattr(e, "text", ""))


def _action_text(text: str) -> str:
    body = _escaped(text)
    if _AMBIGUOUS_START.match(body) or (body.isupper() and body.rstrip().endswith("TO:")):
        body = "!" + body  # forced action: never a heading, transition or cue
    return body


_TRANSITION_WORDS = {"cut": "CUT TO:", "dissolve": "DISSOLVE TO:", "crossfade": "DISSOLVE TO:", "mix": "DISSOLVE TO:",
                     "wipe": "WIPE TO:", "fade": "FADE TO:"}


def _transition_words(node: t.Transition) -> str:
    words = [v.text.lower() for v in node.values]
    if words[:1] == ["fade"] and "from" in words:
        return "FADE IN:"
    if words[:1] == ["fade"] and "black" in words:
        return "FADE TO BLACK."
    return _TRANSITION_WORDS.get(words[0] if words else "cut", "CUT TO:")


@dataclass
class _Writer:
    out: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # storylang lines waiting for their boneyard block
    comments: list = field(default_factory=list)  # the script's // comments, in order, not yet written

    def comments_before(self, line: int) -> None:
        """The writer's comments above a statement, as Fountain notes (shown in apps, not printed)."""
        while self.comments and self.comments[0].span.line < line:
            text = self.comments.pop(0).text.removeprefix("//").strip()
            if text and "]]" not in text and "*/" not in text:
                self.show([f"[[{text}]]"])

    def keep(self, lines: list[str]) -> None:
        if any("*/" in line for line in lines):
            raise FountainError(f"{lines[0].strip()[:60]}: text with */ in it cannot be kept in a Fountain "
                                "boneyard; rewrite it")
        self.kept += lines

    def flush(self) -> None:
        if self.kept:
            self.para(["/* " + MARK, *self.kept, "*/"])
            self.kept = []

    def para(self, lines: list[str]) -> None:
        if self.out and self.out[-1] != "":
            self.out.append("")
        self.out += lines

    def show(self, lines: list[str]) -> None:
        self.flush()
        self.para(lines)


def to_fountain(script: t.Script) -> str:
    """The screenplay of a parsed script (its own statements; an included file stays an include)."""
    w = _Writer(comments=sorted(script.comments, key=lambda c: c.span.line))
    title = _header_value(script, "title")
    author = _header_value(script, "author")
    if title:
        w.out += [f"Title: {_escaped(title)}"] + (["Credit: Written by", f"Author: {_escaped(author)}"] if author else [])
        w.out.append("")
    for item in script.items:
        w.comments_before(item.span.line)
        if isinstance(item, t.Scene):
            w.show([item.heading])
            _body(w, item.body, 1)
        elif isinstance(item, t.Character):
            w.keep([f"character {item.name}"] + [line for s in item.body for line in statement_text(s, 1)])
        else:
            _item(w, item, 0)
    w.comments_before(10 ** 9)
    w.flush()
    return "\n".join(w.out).strip("\n") + "\n"


def _header_value(script: t.Script, key: str) -> str:
    for item in script.items:
        if isinstance(item, t.SettingsLine):
            for s in item.settings:
                if s.key == key and s.values and s.values[0].kind == "string":
                    return _clean(s.values[0].text)
    return ""


def _body(w: _Writer, items, depth: int) -> None:
    for item in items:
        w.comments_before(item.span.line)
        if isinstance(item, t.Shot):
            w.keep(statement_text(item, depth))
            _body(w, item.body, depth + 1)
        else:
            _item(w, item, depth)


def _item(w: _Writer, item, depth: int) -> None:
    if isinstance(item, t.Transition):
        w.keep(statement_text(item, depth))
        words = _transition_words(item)
        # the spec's plain form (an upper-case line ending in TO:) where it reads back as one;
        # forced with > otherwise (FADE IN:, FADE TO BLACK.), which some readers print as it is
        plain_form = words.endswith("TO:") and _reads_back([words], [("Transition", words)])
        w.show([words if plain_form else f"> {words}"])
    elif isinstance(item, t.Dialogue):
        text, paren = _clean(item.text), item.parenthetical
        lines = [item.speaker] + ([f"({paren})"] if paren else []) + [_escaped(text)]
        expected = [("Character", item.speaker)] + ([("Parenthetical", f"({paren})")] if paren else []) \
            + [("Dialogue", text)]
        if _shows(text) and (paren is None or _shows(paren)) and _reads_back(lines, expected):
            w.show(lines)
        else:
            w.keep(statement_text(item, depth))
    elif isinstance(item, t.SettingsLine):
        for s in item.settings:
            _setting(w, s, depth)


def _setting(w: _Writer, s: t.Setting, depth: int) -> None:
    text = _clean(s.values[0].text) if len(s.values) == 1 and s.values[0].kind == "string" else ""
    action = _action_text(text)
    if s.key == "action" and depth == 2 and _shows(text) and not action.startswith("!") \
            and not _reads_back([action], [("Action", text)]):
        action = "!" + action  # forced: whatever else a reader might take it for
    if s.key == "action" and depth == 2 and _shows(text) and _reads_back([action], [("Action", text)]):
        w.show([action])
    elif s.key == "narrate" and depth == 2 and _shows(text) and _reads_back(
            [f"{NARRATOR} (V.O.)", _escaped(text)], [("Character", NARRATOR), ("Dialogue", text)]):
        w.show([f"{NARRATOR} (V.O.)", _escaped(text)])
    else:
        w.keep(statement_text(t.SettingsLine(span=s.span, settings=(s,)), depth))


# ---------------------------------------------------------------- import


_EMPHASIS = re.compile(r"(?<!\\)(\*\*\*|\*\*|\*|_)(?=\S)(.+?)(?<=\S)(?<!\\)\1")
_NOTE = re.compile(r"\[\[(.*?)\]\]", re.S)
_HEADING_START = re.compile(r"^(INT\.?/EXT|EXT\.?/INT|INT|EXT|EST|I/E)[. ]\s*", re.I)
FADE_IN, FADE_OUT = "> fade from black 1s", "> fade to black 1s"
_TRANSITIONS = [(re.compile(p), s) for p, s in [
    (r"^FADE IN", FADE_IN), (r"^FADE (OUT|TO BLACK)", FADE_OUT),
    (r"DISSOLVE", "> dissolve 0.5s"), (r"WIPE", "> wipe 0.5s"), (r"^FADE", "> fade 1s"), (r"CUT", None)]]
_VOICE_OVER = {"V.O.", "O.S.", "O.C.", "VO", "OS", "OC"}


def plain(text: str) -> str:
    """Fountain text as plain words: emphasis markup removed, escapes resolved, notes left out."""
    text = _NOTE.sub("", text)
    while True:
        new = _EMPHASIS.sub(r"\2", text)
        if new == text:
            break
        text = new
    return _clean(re.sub(r"\\(.)", r"\1", text))


def notes_in(text: str) -> list[str]:
    return [_clean(n) for n in _NOTE.findall(text) if _clean(n)]


def from_fountain(text: str, source_name: str) -> str:
    """A `.story` script of a Fountain screenplay (unformatted: the caller formats and checks it)."""
    from fountain_parser import parse

    play = parse(text)
    elements = list(play.elements)
    ours = any(_ours(e) for e in elements)
    r = _Reader(ours=ours)
    r.title_page(play.title_page, source_name)
    for e in elements:  # everyone who speaks, so that an action naming them puts them in frame
        if type(e).__name__ == "Character" and not (e.name.strip() == NARRATOR and ours):
            r.name(e.name)
    for i, e in enumerate(elements):
        if type(e).__name__ not in ("Dialogue", "Parenthetical"):
            r.close_speech()  # a speech ends at anything but its own lines
        getattr(r, "on_" + type(e).__name__, r.on_other)(e, elements, i)
    r.finish()
    return "\n".join(r.lines) + "\n"


def _ours(e) -> bool:
    """A boneyard block storylang wrote: its first line is the mark alone."""
    return type(e).__name__ == "Boneyard" and e.text.strip().split("\n", 1)[0].strip() == MARK


@dataclass
class _Guessed:
    """A shot of a screenplay without storylang blocks, written out once all of it is known."""

    number: int
    framing: str
    guessed_framing: str | None
    action: str
    cast: list[str]
    body: list[str] = field(default_factory=list)  # notes and lines, in order
    spoken: list[str] = field(default_factory=list)

    def text(self) -> list[str]:
        seconds = _reading_seconds(" ".join([self.action, *self.spoken]))
        on = (" on " + " and ".join(dict.fromkeys(self.cast))) if self.cast else ""
        guesses = ([f"framing {self.framing} ({self.guessed_framing})"] if self.guessed_framing else []) + [
            f"{seconds:g}s from the reading time of its action and lines"]
        if self.cast:
            guesses.append("in frame: who is named in the action, and who speaks (not V.O./O.S.)")
        out = ["", f"  shot {self.number} {self.framing}{on} {seconds:g}s"]
        if self.action:
            out.append(f"    action {quote(self.action)}")
        return out + self.body + [f"    note {quote('guess: ' + '; '.join(guesses))}"]


@dataclass
class _Reader:
    ours: bool  # the file was exported by storylang: its boneyard blocks are the script
    lines: list[str] = field(default_factory=list)
    characters: dict[str, str] = field(default_factory=dict)  # cue name → storylang name
    depth: int = 0  # where screenplay elements go: 1 in a scene, 2 in a shot
    in_scene: bool = False
    shots_in_scene: int = 0
    skip_transition: bool = False
    pending: tuple[str, str] | None = None  # a transition waiting for the next shot, and its words (guessing)
    scene_at: int = 0  # index in `lines` of the current scene heading
    first_scene_at: int = 0  # index in `lines` of the first scene heading
    speaker: str | None = None
    paren: str | None = None
    end_card: str | None = None
    shot: _Guessed | None = None
    shots: int = 0
    said: list[str] = field(default_factory=list)  # the lines of the speech being read
    body_at: int = 0  # index in `lines` where the declared characters go (guessing mode)

    # -- the title page

    def title_page(self, page: dict, source_name: str) -> None:
        self.lines.append(f"// Imported by storyc import from {source_name}.")
        if self.ours:
            return  # the header is in the boneyard
        for key, values in (page or {}).items():
            value = plain(" ".join(values))
            if key.lower() == "title" and value:
                self.lines.append(f"title {quote(value)}")
            elif key.lower() in ("author", "authors") and value:
                self.lines.append(f"author {quote(value)}")
            elif value:
                self.lines.append(f"// {key}: {value}")
        self.body_at = len(self.lines)

    # -- elements

    def on_Boneyard(self, e, elements, i) -> None:
        body = e.text.strip("\n")
        if self.ours and _ours(e):
            kept = body.split("\n")[1:]
            self.lines += kept
            for line in kept:
                if line.strip().startswith("shot "):
                    self.depth = 2  # screenplay elements after it are the shot's
                if line.strip().startswith(">"):
                    self.skip_transition = True  # the screenplay's transition after it only shows this one
                    if len(line) - len(line.lstrip()) <= 2:
                        self.depth = 1 if self.in_scene else 0  # a transition between shots ends the shot
        else:
            self.lines += [f"// {line}".rstrip() for line in body.strip().split("\n")]

    def on_SceneHeading(self, e, elements, i) -> None:
        self.close_speech()
        self.end_shot()
        heading = e.text.strip()
        guess = None
        m = _HEADING_START.match(heading)
        if m:
            prefix = m.group(1).upper().replace(".", "")
            prefix = {"INT/EXT": "INT./EXT.", "EXT/INT": "EXT./INT.", "I/E": "I/E."}.get(prefix, prefix + ".")
            heading = f"{prefix} {heading[m.end():].strip().upper()}"
        else:
            guess = f"the heading {heading!r} names no INT. or EXT.: INT. was guessed"
            heading = f"INT. {heading.upper()}"
        self.lines.append("")
        self.scene_at = len(self.lines)  # where a transition from the scene before goes
        self.first_scene_at = self.first_scene_at if self.in_scene or self.first_scene_at else self.scene_at
        self.lines.append(heading)
        self.in_scene, self.shots_in_scene, self.depth = True, 0, 1
        if not self.ours:
            if e.scene_number:
                self.lines.append(f"  note {quote('scene ' + e.scene_number)}")
            if guess:
                self.lines.append(f"  note {quote('guess: ' + guess)}")

    def on_Action(self, e, elements, i) -> None:
        self.close_speech()
        self.skip_transition = False
        text, notes = _read_text(e), notes_in(e.text)
        if self.ours:
            if text:
                self.open_shot(text)
                self.lines.append("  " * self.depth + f"action {quote(text)}")
            self.lines += ["  " * self.depth + f"// {n}" for n in notes]
            return
        if e.is_centered:
            if i == len(elements) - 1 or all(type(x).__name__ in ("Transition", "PageBreak") for x in elements[i + 1:]):
                self.end_card = text
                return
            notes.append("centered text in the screenplay")
        if not text and notes:
            self.note_lines(notes)
            return
        if text:
            self.new_shot(text, notes)

    def on_Character(self, e, elements, i) -> None:
        self.close_speech()
        self.skip_transition = False
        name = self.name(e.name)
        extensions = [x.upper() for x in e.extensions]
        if self.ours:
            self.open_shot("")
        if self.ours and name == NARRATOR and "V.O." in extensions:
            self.speaker = None
            self.paren = "narrate"
            return
        self.speaker = name
        voice_over = [x for x in extensions if x in _VOICE_OVER]
        self.paren = ", ".join(voice_over) or None
        if not self.ours:
            if self.shot is None:
                self.new_shot("", [], framing=("close", f"{name} speaks with no action before"))
            if not voice_over:
                self.shot.cast.append(name)
            if e.is_dual:
                self.shot.body.append(f"    note {quote('dual dialogue in the screenplay: spoken one after the other')}")

    def on_Parenthetical(self, e, elements, i) -> None:
        self.flush_speech()
        words = plain(e.text.strip().removeprefix("(").removesuffix(")"))
        if self.paren == "narrate":
            return
        voice_over = self.voice_over()
        self.paren = ", ".join(x for x in (voice_over, words) if x) or None

    def voice_over(self) -> str | None:
        """The V.O./O.S. of the cue: it stays with every line of the speech."""
        first = (self.paren or "").split(", ")[0]
        return first if first in _VOICE_OVER else None

    def on_Dialogue(self, e, elements, i) -> None:
        text = _read_text(e)
        if text:
            self.said.append(text)  # a speech's lines are one line of storylang, until a parenthetical

    def flush_speech(self) -> None:
        text = " ".join(self.said)
        self.said = []
        if not text:
            return
        if self.paren == "narrate":
            self.lines.append("  " * self.depth + f"narrate {quote(text)}")
            return
        if self.speaker is None:
            return
        paren = self.paren.replace("(", "").replace(")", "") if self.paren else None
        line = f"{self.speaker}{f' ({paren})' if paren else ''}: {text}"
        if self.ours:
            self.lines.append("  " * self.depth + line)
        else:
            self.shot.body.append("    " + line)
            self.shot.spoken.append(text)
        self.paren = self.voice_over()  # a parenthetical is for the words after it

    def on_Transition(self, e, elements, i) -> None:
        self.close_speech()
        if self.ours:
            if not self.skip_transition:
                self.lines.append("  " * min(self.depth, 1) + f"// {e.text.strip()} (a transition storylang has no statement for)")
            self.skip_transition = False
            return
        self.end_shot()
        words = e.text.strip().upper()
        found = next((s for p, s in _TRANSITIONS if p.search(words)), "unknown")
        if found == "unknown":
            self.lines.append("  " * min(self.depth, 1) + f"// {e.text.strip()}: not a transition storylang knows (a cut)")
        elif found == FADE_IN:
            if self.shots:  # a fade from black only opens a film
                self.lines.append("  " * min(self.depth, 1) + f"// {e.text.strip()} (mid-film: a cut)")
            else:
                self.lines.insert(self.first_scene_at if self.in_scene else len(self.lines), found)
        elif found:
            self.pending = (found, e.text.strip())

    def on_SectionHeading(self, e, elements, i) -> None:
        self.end_shot()
        self.lines.append("  " * min(self.depth, 1) + f"// {'#' * e.level} {e.text.strip()}")

    def on_Synopsis(self, e, elements, i) -> None:
        self.end_shot()
        self.lines.append("  " * min(self.depth, 1) + f"// = {e.text.strip()}")

    def on_other(self, e, elements, i) -> None:
        pass  # page breaks

    # -- guessing

    def open_shot(self, action: str) -> None:
        """A screenplay storylang exported, then edited in a Fountain app: action or dialogue where
        no shot of ours is open (a scene written there) starts a shot, with a note of the guess."""
        if self.depth == 2:
            return
        if not self.in_scene:
            self.lines += ["", "INT. UNKNOWN PLACE", f"  note {quote('guess: written before any scene heading')}"]
            self.in_scene = True
        seconds = _reading_seconds(action)
        self.lines += ["", f"  shot medium {seconds:g}s",
                       f"    note {quote(f'guess: written in the screenplay; framing medium, {seconds:g}s from its reading time')}"]
        self.depth = 2

    def name(self, cue: str) -> str:
        from storylang.draft import name_of

        cue = cue.strip().lstrip("@")
        if cue not in self.characters:
            self.characters[cue] = name_of(cue) or f"CHARACTER {len(self.characters) + 1}"
        return self.characters[cue]

    def close_speech(self) -> None:
        self.flush_speech()
        self.speaker = None
        self.paren = None

    def note_lines(self, notes: list[str]) -> None:
        if self.shot is not None:
            self.shot.body += [f"    note {quote(n)}" for n in notes]
        else:
            self.lines += ["  " * (1 if self.in_scene else 0) + f"note {quote(n)}" for n in notes]

    def new_shot(self, action: str, notes: list[str], framing: tuple[str, str] | None = None) -> None:
        self.end_shot()
        if not self.in_scene:
            self.lines += ["", "INT. UNKNOWN PLACE"]
            self.lines.append("  " + f"note {quote('guess: the screenplay starts without a scene heading')}")
            self.in_scene, self.shots_in_scene = True, 0
        self.place_pending()
        if framing is None:
            framing = ("wide", "the first shot of its scene") if self.shots_in_scene == 0 else ("medium", "a default")
        cast = [n for n in dict.fromkeys(self.characters.values()) if re.search(rf"\b{re.escape(n)}\b", action, re.I)]
        self.shots += 1
        self.shot = _Guessed(number=self.shots, framing=framing[0], guessed_framing=framing[1], action=action,
                             cast=cast, body=[f"    note {quote(n)}" for n in notes])
        self.depth = 2
        self.shots_in_scene += 1

    def place_pending(self) -> None:
        """A transition read between two shots goes between them: in the scene's body when both are in
        one scene, else at the end of the scene before; a fade to black between shots is a fade."""
        if not self.pending:
            return
        statement, words = self.pending
        self.pending = None
        if statement == FADE_OUT:
            statement = "> fade 1s"
        if self.shots == 0:
            self.lines.append(f"// {words} (before the first shot: nothing to come from)")
        elif self.shots_in_scene:
            self.lines.append("  " + statement)
        else:
            self.lines.insert(self.scene_at, "  " + statement)

    def end_shot(self) -> None:
        if self.shot is not None:
            self.lines += self.shot.text()
            self.shot = None

    def finish(self) -> None:
        self.close_speech()
        if self.ours:
            return
        self.end_shot()
        declared = [f"character {n}" for n in dict.fromkeys(self.characters.values())]
        if declared:
            block = ["", *sum(([d, f"  note {quote('guess: look and voice are not in the screenplay')}", ""]
                               for d in declared), [])]
            self.lines[self.body_at:self.body_at] = block
        if self.end_card:
            self.lines.insert(self.body_at, f"end {quote(self.end_card)}")
        if not self.shots:  # no shot to fade: the fades are words only
            self.lines = [f"// {line}" if line == FADE_IN else line for line in self.lines]
            self.pending = None
        if self.pending and self.pending[0] == FADE_OUT:
            self.lines += ["", FADE_OUT]  # the film's own fade out, after its last shot
        elif self.pending:
            self.lines.append(f"// {self.pending[1]} (after the last shot: nothing to go to)")


def _reading_seconds(text: str) -> float:
    words = len(text.split())
    return min(max(round(words / WORDS_PER_SECOND * 2) / 2, 2.0), 10.0)


def import_text(text: str, source_name: str, output_name: str) -> str:
    """The formatted `.story` text of a Fountain screenplay; FountainError if it does not parse."""
    from storylang.syntax.format import format_script
    from storylang.syntax.parse import parse_text

    story = from_fountain(text, source_name)
    tree, diags = parse_text(story, output_name)
    errors = [d for d in diags if d.severity == "error"]
    if tree is None or errors:
        d = errors[0] if errors else None
        where = f" (line {d.span.line}: {d.message})" if d and d.span else ""
        raise FountainError(f"{source_name}: the script made from it does not parse{where}; please report it")
    return format_script(tree, story)
