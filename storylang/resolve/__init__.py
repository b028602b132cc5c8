"""Syntax tree → resolved film: includes, the defaults cascade, names, vocabularies, frames.

Film settings cascade to scenes and scenes to shots; a shot may override any of them.
Every independent problem is reported; the film is returned only when there is no error.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from storylang import film as f
from storylang import vocabulary as vocab
from storylang.diagnostics import Diagnostic, did_you_mean, has_errors
from storylang.direction import directed
from storylang.syntax import tree as t
from storylang.loader import Loaded, Loader, ScriptFile
from storylang.syntax.parse import paused_gc

from storylang.resolve.settings import Settings
from storylang.resolve.rules import (CHARACTER_KEYS, DEFAULT_SHOT_SECONDS, FILM_KEYS, SCENE_KEYS, SHOT_KEYS,
                                     WHERE_KEY_BELONGS, _CASCADING, _Defaults, _clean, _seconds_text, derive_seed,
                                     round_frames)


class _Resolver(Settings):
    """The film step: characters, scenes, shots, transitions, from a loaded script."""

    def resolve(self, loaded: Loaded, display: str) -> f.Film | None:
        """The film of a loaded script (None if it has errors); diagnostics go to self.diagnostics."""
        self.files = loaded.files
        self.reads = loaded.reads or self.reads
        items = loaded.items
        if not items:
            return None if has_errors(self.diagnostics) else self._empty(display)
        width, height = self.film_format(items)
        film: dict = {}
        base = _Defaults()
        for src, item in items:
            if isinstance(item, t.SettingsLine):
                self.apply(src, item, base, FILM_KEYS, "the film", film=film)
        characters, char_src = self._characters(items, base)
        self.characters = characters
        used: set[str] = set()
        scenes: list[f.Scene] = []
        shots: list[f.Shot] = []
        shot_sources: list[tuple[ScriptFile, t.Shot]] = []
        transitions: list[tuple[ScriptFile, t.Transition, f.Transition, int]] = []  # (.., shots before it)
        numbers: dict[str, tuple[ScriptFile, t.Shot]] = {}
        ids: dict[str, int] = {}
        for src, item in items:
            if isinstance(item, t.Transition):
                tr = self.transition(src, item)
                if tr:
                    transitions.append((src, item, tr, len(shots)))
                continue
            if not isinstance(item, t.Scene):
                continue
            scene_d = base.child()
            sc: dict = {}
            for part in item.body:
                if isinstance(part, t.SettingsLine):
                    self.apply(src, part, scene_d, SCENE_KEYS, "a scene", scene=sc)
            interior, place, time = _split_heading(item.heading)
            index = len(scenes)
            music = sc.get("music")
            if index == 0 and music is None and film.get("music") and not sc.get("music_off"):
                music = film["music"]
            scenes.append(f.Scene(index=index, heading=item.heading, interior=interior, place=place, time=time,
                                  setting=scene_d.setting, lighting=scene_d.lighting, mood=scene_d.mood,
                                  music=music, music_off=bool(sc.get("music_off")),
                                  where=f.Where(file=src.display, line=item.span.line, column=item.span.column)))
            for part in item.body:
                if isinstance(part, t.Transition):
                    tr = self.transition(src, part)
                    if tr:
                        transitions.append((src, part, tr, len(shots)))
                elif isinstance(part, t.Shot):
                    used.update(c.name for c in part.cast)
                    used.update(x.speaker for x in part.body if isinstance(x, t.Dialogue))
                    shot, shot_transitions = self.shot(src, part, scene_d, index, item.heading)
                    for tpart in shot_transitions:
                        tr = self.transition(src, tpart)
                        if tr:
                            transitions.append((src, tpart, tr, len(shots) + 1))
                    if shot is None:
                        # keep counting so transitions stay attached to the right neighbours
                        shots.append(None)
                        shot_sources.append((src, part))
                        continue
                    shots.append(self._unique_shot(src, part, shot, numbers, ids))
                    shot_sources.append((src, part))
        film_fade_in, film_fade_out = self._place_transitions(transitions, shots)
        self._check_transition_lengths(shots, shot_sources, film_fade_in, film_fade_out)
        self._warn_unused(char_src, used, items[0][0])
        made = dict(width=width, height=height, narrator=base.narrator, fade_in=film_fade_in, fade_out=film_fade_out,
                    characters=tuple(characters.values()), scenes=tuple(scenes))
        if has_errors(self.diagnostics):
            # what did resolve, for an editor's hovers while the script has errors
            try:
                self.draft = self._film(film, display, **made, shots=tuple(s for s in shots if s is not None))
            except ValueError:  # pydantic's ValidationError: a film too broken to show
                self.draft = None
            return None
        return self._film(film, display, **made, shots=tuple(shots))

    def _film(self, film: dict, display: str, **made) -> f.Film:
        return f.Film(
            title=film.get("title", Path(display).stem.replace("_", " ").title()),
            author=film.get("author", ""),
            title_frames=film.get("title_frames", 0), end=film.get("end", ""), end_frames=film.get("end_frames", 0),
            card_where=film.get("card_where", {}), fps_num=self.fps.numerator, fps_den=self.fps.denominator,
            llm=film.get("llm"), script=self.files[0] if self.files else display, files=tuple(self.files), **made,
        )

    def _characters(self, items, base: _Defaults):
        """The declared characters by name, and where each was declared."""
        characters: dict[str, f.Character] = {}
        char_src: dict[str, tuple[ScriptFile, t.Character]] = {}
        for src, item in items:
            if isinstance(item, t.Character):
                if item.name in characters:
                    prev = char_src[item.name][1]
                    self.error(src, item.name_span, "duplicate-character", f"character {item.name} is declared twice",
                               f"the first is at {char_src[item.name][0].display}:{prev.span.line}")
                    continue
                c = self.character(src, item, base)
                if c:
                    characters[item.name] = c
                    char_src[item.name] = (src, item)
        return characters, char_src

    def _warn_unused(self, char_src: dict, used: set[str], main_src: ScriptFile) -> None:
        """A character of the main script who never appears is a warning (an included bible's are not)."""
        for name, (src, node) in char_src.items():
            if name not in used and src is main_src:
                self.warn(src, node.name_span, "unused-character", f"character {name} never appears",
                          f"put them in a shot (shot close on {name}) or remove them")

    def _render(self, given: dict, loras: list, seed: int, speaking: bool = False) -> f.RenderSettings:
        """The shot's render settings: what the script set, and its model family's defaults for the rest.
        A shot whose cast speaks, under `lipsync`, renders on the lipsync model with its template."""
        given = {k: v for k, v in given.items() if k != "family"} | {"family": given.get("family")}
        if speaking and given.get("lipsync"):
            given = {**given, "model": given["lipsync"], "family": None, "template": "lipsync"}
        family, origin = self._family_of(given.get("family"), given.get("model"))
        taken = {k: v for k, v in self._defaults_of(family).items() if k not in given}
        return f.RenderSettings(**{**taken, **given, "family": family.name, "family_origin": origin,
                                   "from_family": tuple(sorted(taken)), "loras": tuple(loras), "seed": seed})

    def _family_of(self, named: str | None, model: str | None):
        """(family, how it was found) of a shot's model: the same for every shot of a model, so found once."""
        memo = self._family_memo
        if (named, model) not in memo:
            memo[(named, model)] = _family_of({"family": named, "model": model}, self.model_families())
        return memo[(named, model)]

    def _defaults_of(self, family) -> dict:
        memo = self._defaults_memo
        if family.name not in memo:
            memo[family.name] = family.defaults.model_dump()
        return memo[family.name]

    def _unique_shot(self, src: ScriptFile, part: t.Shot, shot: f.Shot, numbers: dict, ids: dict) -> f.Shot:
        """The shot, checked for a number or name used twice; a repeated id gets a suffix."""
        if part.number:
            if part.number in numbers:
                psrc, prev = numbers[part.number]
                self.error(src, part.number_span, "duplicate-shot", f"shot {part.number} is numbered twice",
                           f"the first is at {psrc.display}:{prev.span.line}; an inserted shot takes a letter: {part.number}A")
            numbers[part.number] = (src, part)
        if part.name is not None and not part.number and shot.id in ids:
            self.error(src, part.name.span, "duplicate-shot", f'two shots are named "{shot.id}"',
                       "give one a number or another name")
        if shot.id in ids:
            ids[shot.id] += 1
            return shot.model_copy(update={"id": f"{shot.id}-{ids[shot.id]}"})
        ids[shot.id] = 1
        return shot

    def _place_transitions(self, transitions, shots: list) -> tuple[int, int]:
        """Attach each transition to the shot before it; returns the film's fade in and fade out."""
        film_fade_in = film_fade_out = 0
        for src, node, tr, before in transitions:
            if tr.continues:
                if 0 < before < len(shots) and shots[before] is not None:
                    shots[before] = shots[before].model_copy(update={"continues": True})
                else:
                    self.error(src, node.span, "transition", "> continue goes between two shots",
                               "the shot after it starts where the shot before it ends")
                continue
            if tr.kind == "cut":
                continue
            if before == 0:
                if tr.kind != "fade" or tr.direction == "out":
                    self.error(src, node.span, "transition", f"a {tr.kind} before the first shot has nothing to come from",
                               "open the film with > fade from black 1s")
                else:
                    film_fade_in = tr.frames
                continue
            if before >= len(shots):
                if tr.kind != "fade" or tr.direction == "in":
                    self.error(src, node.span, "transition", f"a {tr.kind} after the last shot has nothing to go to",
                               "end the film with > fade to black 1s")
                else:
                    film_fade_out = tr.frames
                continue
            prev = shots[before - 1]
            if prev is None:
                continue
            if prev.transition is not None:
                self.error(src, node.span, "transition", "two transitions between the same two shots",
                           "keep one of them")
                continue
            shots[before - 1] = prev.model_copy(update={"transition": tr})
        return film_fade_in, film_fade_out

    def _check_transition_lengths(self, shots: list, shot_sources: list, film_fade_in: int, film_fade_out: int):
        """Transitions must fit inside the shots they join."""
        for i, shot in enumerate(shots):
            if shot is None:
                continue
            into = shots[i - 1].transition.frames if i > 0 and shots[i - 1] and shots[i - 1].transition else 0
            out = shot.transition.frames if shot.transition else 0
            if i == 0:
                into = film_fade_in
            if i == len(shots) - 1:
                out = film_fade_out
            if into + out > shot.frames:
                src, node = shot_sources[i]
                self.error(src, node.span, "transition-too-long",
                           f"shot {shot.id} lasts {_seconds_text(shot.frames, self.fps)} but its transitions take {_seconds_text(into + out, self.fps)}",
                           "lengthen the shot or shorten its transitions")

    def _empty(self, display: str) -> f.Film:
        return f.Film(title=Path(display).stem, script=display)

    def character(self, src: ScriptFile, node: t.Character, base: _Defaults) -> f.Character | None:
        d = _Defaults(seed_base=derive_seed(base.seed_base, "character", node.name), narrator=base.narrator)
        d.narrator = f.Voice(id=base.narrator.id, rate=base.narrator.rate, pitch=base.narrator.pitch)
        info: dict = {}
        loras: list[f.Lora] = []
        seed = None
        seen: dict = {}
        for line in node.body:
            for s in line.settings:
                if s.key in CHARACTER_KEYS and not self.once(src, s, seen, f"character {node.name}"):
                    continue
                if s.key not in CHARACTER_KEYS:
                    where = WHERE_KEY_BELONGS.get(s.key)
                    self.error(src, s.key_span, "misplaced-setting", f'"{s.key}" cannot be set on a character',
                               f'"{s.key}" belongs to {where}' if where else
                               "a character has look, lora, voice, reference, sheet, seed and negative")
                elif s.key in ("look", "negative"):
                    if (x := self.text(src, s, f'{s.key} "woman in her sixties, silver braid"')) is not None:
                        info[s.key] = x
                elif s.key == "lora":
                    if (x := self.lora(src, s)) is not None:
                        loras.append(x)
                elif s.key == "voice":
                    if (v := self.voice(src, s, 'voice "en-us+f3" rate 170 pitch 40')) is not None:
                        info["voice"] = v
                elif s.key == "reference":
                    example = 'reference "refs/mara.png" 0.8'
                    if self.need(src, s, 1, example):
                        path = self.file_value(src, s.values[0], "reference image", "image")
                        weight = 0.8
                        if len(s.values) > 1:
                            weight = self.number(src, s.values[1], "a reference weight", 0, 2)
                        self.extra(src, s.values[2:], example)
                        if path and weight is not None:
                            info["reference"] = f.Reference(file=path, weight=weight)
                elif s.key == "seed":
                    seed = self.one_number(src, s, 0, 2**63 - 1, True, "seed 1234")
                elif s.key == "sheet":
                    if not s.values:
                        info["sheet"] = SHEET_VIEW
                    elif (x := self.text(src, s, 'sheet "front view, full body, neutral background"')) is not None:
                        info["sheet"] = x
        return f.Character(
            name=node.name, look=info.get("look", ""), negative=info.get("negative", ""),
            seed=seed if seed is not None else d.seed_base,
            voice=info.get("voice", base.narrator), loras=tuple(loras), reference=info.get("reference"),
            sheet=info.get("sheet"),
            where=f.Where(file=src.display, line=node.span.line, column=node.span.column),
        )

    def shot(self, src: ScriptFile, node: t.Shot, scene_d: _Defaults, scene_index: int, heading: str):
        d = scene_d.child()
        info: dict = {}
        errors_before = sum(1 for x in self.diagnostics if x.severity == "error")
        trailing: list[t.Transition] = []
        for part in node.body:
            if isinstance(part, t.SettingsLine):
                self.apply(src, part, d, SHOT_KEYS, "a shot", shot=info)
            elif isinstance(part, t.Dialogue):
                if part.speaker not in self.characters:
                    guess = did_you_mean(part.speaker, self.characters)
                    self.error(src, part.speaker_span, "unknown-character", f"unknown character {part.speaker}",
                               f"did you mean {guess}?" if guess else f"declare them first: character {part.speaker}")
                elif not part.text:
                    self.error(src, part.span, "empty-line", f"{part.speaker} has a cue but no line",
                               "write the line after the colon: MARA: Not tonight.")
                else:
                    info.setdefault("lines", []).append(("dialogue", part.speaker, part.parenthetical,
                                                         _clean(part.text), part.span))
            elif isinstance(part, t.Transition):
                trailing.append(part)
        framing, angle = self.framing(src, node)
        cast = []
        for c in node.cast:
            if c.name not in self.characters:
                guess = did_you_mean(c.name, self.characters)
                self.error(src, c.span, "unknown-character", f"unknown character {c.name}",
                           f"did you mean {guess}?" if guess else f"declare them first: character {c.name}")
            elif c.name in cast:
                self.error(src, c.span, "duplicate-cast", f"{c.name} is named twice in this shot")
            else:
                cast.append(c.name)
        frames = d.duration if d.duration is not None else round_frames(DEFAULT_SHOT_SECONDS, self.fps)
        if node.duration is not None:
            frames = self.duration(src, node.duration, "a shot")
        if sum(1 for x in self.diagnostics if x.severity == "error") > errors_before or frames is None:
            return None, trailing
        lines = []
        for kind, speaker, paren, text, span in info.get("lines", []):
            voice = directed(self.characters[speaker].voice if speaker else d.narrator, paren)
            lines.append(f.Line(kind=kind, speaker=speaker, parenthetical=paren, text=text, voice=voice,
                                where=f.Where(file=src.display, line=span.line, column=span.column)))
        schedule = []
        for frame, text, span in sorted(info.get("schedule", []), key=lambda x: x[0]):
            if frame >= frames:
                self.error(src, span, "cue-outside-shot", f"this cue at {_seconds_text(frame, self.fps)} is past the shot's end ({_seconds_text(frames, self.fps)})")
            elif schedule and schedule[-1].frame == frame:
                self.error(src, span, "duplicate-cue", f"two cues at {_seconds_text(frame, self.fps)}")
            else:
                schedule.append(f.Cue(frame=frame, text=text))
        if info.get("keyframes") and info.get("source"):
            self.error(src, node.span, "keyframes-and-source", "a shot takes keyframes or a source clip, not both")
        cast_seeds = [self.characters[n].seed for n in sorted(cast)]
        name = _clean(node.name.text) if node.name is not None else None
        identity = node.number or name or _content_id(heading, framing, cast, info.get("action", ""), lines)
        seed = d.seed_fixed if d.seed_fixed is not None else derive_seed(d.seed_base, *cast_seeds, "shot", identity)
        loras = list(d.loras)
        for n in cast:
            loras.extend(self.characters[n].loras)
        speaking = any(line.speaker in cast for line in lines)
        render = self._render(d.render, loras, seed, speaking)
        shot = f.Shot(
            id=identity, number=node.number, name=name or None, scene=scene_index, framing=framing, angle=angle, cast=tuple(cast),
            frames=frames, action=info.get("action", ""), setting=d.setting, lighting=d.lighting, mood=d.mood,
            camera=tuple(info.get("camera", d.camera)), lines=tuple(lines), schedule=tuple(schedule),
            keyframes=info.get("keyframes"), source=info.get("source"), overrun=d.overrun, expand=d.expand, render=render,
            where=f.Where(file=src.display, line=node.span.line, column=node.span.column),
        )
        return shot, trailing

    def framing(self, src: ScriptFile, node: t.Shot) -> tuple[str, str | None]:
        words = [v.text.lower() for v in node.framing]
        if not words:
            return vocab.DEFAULT_FRAMING, None
        framing = angle = None
        i = 0
        while i < len(words):
            for table, kind in ((vocab.FRAMING_PHRASES, "framing"), (vocab.ANGLE_PHRASES, "angle")):
                hit = next((n for n in (4, 3, 2, 1) if tuple(words[i:i + n]) in table), None)
                if hit:
                    value = table[tuple(words[i:i + n])] if (n := hit) else None
                    if kind == "framing" and framing is None:
                        framing = value
                    elif kind == "angle" and angle is None:
                        angle = value
                    else:
                        hit = None
                    if hit:
                        i += hit
                        break
            else:
                v = node.framing[i]
                if v.text.isupper() and v.text in self.characters:
                    self.error(src, v.span, "framing", f'"{v.text}" is a character, not a framing',
                               f"put characters in frame with on: shot {' '.join(words[:i]) or 'close'} on {v.text}")
                else:
                    rest = " ".join(words[i:i + 3])
                    names = [*vocab.FRAMINGS, *vocab.ANGLES]
                    guess = did_you_mean(rest, names, 0.5) or did_you_mean(words[i], names, 0.5)
                    self.error(src, v.span, "unknown-framing", f'unknown framing "{v.text}"',
                               f'did you mean "{guess}"?' if guess else "framings: " + ", ".join(vocab.FRAMINGS))
                return vocab.DEFAULT_FRAMING, None
        return framing or vocab.DEFAULT_FRAMING, angle


def _content_id(heading: str, framing: str, cast, action: str, lines) -> str:
    data = "\x1f".join([heading, framing, ",".join(cast), action, *(line.text for line in lines)])
    return "~" + hashlib.sha256(data.encode("utf-8")).hexdigest()[:6]


def _split_heading(heading: str) -> tuple[str, str, str]:
    m = re.match(r"(INT\.?\s*/\s*EXT\.?|EXT\.?\s*/\s*INT\.?|I/E\.?|INT\.|EXT\.|EST\.)\s*(.*)", heading)
    prefix, rest = (m.group(1), m.group(2)) if m else ("", heading)
    interior = {"INT.": "INT", "EXT.": "EXT", "EST.": "EST"}.get(prefix, "INT/EXT")
    if " - " in rest:
        place, time = rest.rsplit(" - ", 1)
    else:
        place, time = rest, ""
    return interior, place.strip(), time.strip()


_LOADER = Loader()  # parsed files are remembered by content across loads in one process


SHEET_VIEW = "character sheet, front view, full body, neutral grey background"  # a bare `sheet`


def _family_of(render: dict, known: dict):
    """The shot's model family and how it was found: named after the model, else by the file's
    name, else Stable Diffusion 1.5 (a checkpoint named like no family)."""
    from storylang.families import DEFAULT, detect

    if render.get("family"):
        return known[render["family"]], "named"
    found = detect(render["model"], known) if render.get("model") else None
    return (found, "file name") if found else (known[DEFAULT], "assumed")


def resolve(loaded: Loaded, root: Path, display: str) -> tuple[f.Film | None, list[Diagnostic]]:
    """Resolve a loaded script. Returns (film or None, diagnostics of loading and resolving)."""
    film, _, diagnostics = resolve_draft(loaded, root, display)
    return film, diagnostics


def resolve_draft(loaded: Loaded, root: Path, display: str) -> tuple[f.Film | None, f.Film | None, list[Diagnostic]]:
    """As resolve, with the draft: while the script has errors, a film of what did resolve (the
    shots without errors), for an editor to describe. Nothing that builds may use a draft."""
    r = _Resolver(root)
    r.diagnostics.extend(loaded.diagnostics)
    with paused_gc():
        film = r.resolve(loaded, display)
    diagnostics = r.diagnostics
    if loaded.recovered:
        # Statements with syntax errors were set aside: keep only what cannot be their echo.
        diagnostics = [d for d in diagnostics if d.code not in _CASCADING]
        r.draft, film = film or r.draft, None
    return film, (film or r.draft), diagnostics


def resolve_file(path: Path, display: str | None = None,
                 loader: Loader | None = None) -> tuple[f.Film | None, list[Diagnostic], dict[str, str]]:
    """Load and resolve a script. Returns (film or None, diagnostics, source texts by file name)."""
    display = display or str(path)
    # one pause of the collector for both: it would otherwise walk the fresh trees in between
    with paused_gc():
        loaded = (loader or _LOADER).load(path, display)
        film, diagnostics = resolve(loaded, path.resolve().parent, display)
    return film, diagnostics, loaded.sources
