"""Reading one value of a statement: files, numbers, durations, options, voices, LoRAs, camera
moves, transitions, the film's format and music; every problem reported at its span."""

from __future__ import annotations

import hashlib
import os
import re
from fractions import Fraction
from pathlib import Path

from storylang import film as f, probe
from storylang import vocabulary as vocab
from storylang.diagnostics import Diagnostic, Span, did_you_mean
from storylang.syntax import tree as t
from storylang import trust

VOICE_ENGINES = ("espeak", "openai")  # speech.py speaks with each
from storylang.loader import ScriptFile, unreadable_file
from storylang.resolve.rules import CARD_SECONDS, round_frames, _clean, _num



MAX_TEXT = 20_000  # characters of one quoted text (a """long text""" too)
MAX_DURATION_SECONDS = 3600  # one shot, card, pause or cue: longer is a typo, and would fail deep in ffmpeg


class Values:
    """The resolver's readers of values, and where its diagnostics go."""

    def __init__(self, root: Path):
        self.root = root
        self.diagnostics: list[Diagnostic] = []
        self.files: list[str] = []
        self.fps = Fraction(24)
        self.reads = trust.Reads((root,))  # the loaded script's (see resolve)
        self._families: dict | None = None
        self.draft = None  # the film of what resolved, when the script has errors (resolve_draft)
        # found once per resolve, as most shots share them: "4s" at this fps → frames; a (family,
        # model) → its family and how it was found; a family → its defaults as a dict
        self._frames: dict[tuple[str, Fraction], int] = {}
        self._family_memo: dict = {}
        self._defaults_memo: dict = {}

    def model_families(self) -> dict:
        """The model families a script may name: the shipped ones and the project's (templates/families/)."""
        if self._families is None:
            from storylang.families import FamilyError, families

            try:
                self._families = families(self.root)
            except FamilyError as e:  # a project's family file that cannot be read: one error, then the shipped ones
                self.diagnostics.append(Diagnostic(severity="error", code="family-file", message=str(e),
                                                   file=self.files[0] if self.files else str(self.root),
                                                   hint="fix the file in templates/families/ or remove it"))
                self._families = families(None)
        return self._families

    # -- messages

    def error(self, src: ScriptFile, span: Span | None, code: str, message: str, hint: str | None = None):
        self.diagnostics.append(
            Diagnostic(severity="error", code=code, message=message, file=src.display, span=span, hint=hint)
        )

    def warn(self, src: ScriptFile, span: Span | None, code: str, message: str, hint: str | None = None):
        self.diagnostics.append(
            Diagnostic(severity="warning", code=code, message=message, file=src.display, span=span, hint=hint)
        )

    # -- files

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def file_value(self, src: ScriptFile, v: t.Value, what: str, kind: str) -> str | None:
        """A quoted path, relative to the script naming it → path relative to the film root.

        The file must be of `kind` ("image", "audio" or "video") and readable by the build.
        """
        if v.kind != "string":
            self.error(src, v.span, "expected-file", f"{what} needs a file name in quotes", f'write it as "{v.text}"')
            return None
        target = src.path.parent / v.text
        unreadable = unreadable_file(src, v, what, self.reads)
        if unreadable:
            self.diagnostics.append(unreadable)
            return None
        wrong = probe.problem(target, kind)
        if wrong:
            self.error(src, v.span, "bad-media", f'{what} "{v.text}" {wrong}', probe.hint(kind))
            return None
        return self.relative(target.resolve())

    def card(self, src: ScriptFile, s: t.Setting, film: dict) -> None:
        """`title "..." [3s]` opens the film on a title card; `end "..." [3s]` closes it on an end card."""
        example = f'{s.key} "{"The Lighthouse Keeper" if s.key == "title" else "The End"}" 3s'
        v = self.quoted(src, s, example, f'"{s.key}" needs its text in quotes', options=1)
        if v is None:
            return
        frames = round_frames(CARD_SECONDS, self.fps)
        if len(s.values) > 1 and (n := self.duration(src, s.values[1], f"the {s.key} card", allow_zero=True)) is not None:
            frames = n
        film[s.key] = _clean(v.text)
        film[f"{s.key}_frames"] = frames
        film.setdefault("card_where", {})[s.key] = f.Where(file=src.display, line=v.span.line, column=v.span.column)

    # -- values

    def need(self, src: ScriptFile, s: t.Setting, count: int, example: str) -> bool:
        if len(s.values) < count:
            self.error(src, s.span, "missing-value", f'"{s.key}" needs a value', f"for example: {example}")
            return False
        return True

    def extra(self, src: ScriptFile, values, example: str) -> None:
        if values:
            v = values[0]
            span = Span(line=v.span.line, column=v.span.column, end_line=values[-1].span.end_line,
                        end_column=values[-1].span.end_column)
            self.error(src, span, "extra-value", f'unexpected "{v.raw}"', f"for example: {example}")

    def quoted(self, src: ScriptFile, s: t.Setting, example: str, message: str, options: int = 0) -> t.Value | None:
        """The setting's first value, which must be quoted text, followed by at most `options` more."""
        if not self.need(src, s, 1, example):
            return None
        v = s.values[0]
        if v.kind != "string":
            self.error(src, v.span, "expected-text", message, f"for example: {example}")
            return None
        if len(v.text) > MAX_TEXT:
            self.error(src, v.span, "text-too-long", f'"{s.key}" text is longer than {MAX_TEXT:,} characters',
                       "no statement needs that much: a prompt is read as a few hundred words")
            return None
        self.extra(src, s.values[1 + options:], example)
        return v

    def text(self, src: ScriptFile, s: t.Setting, example: str) -> str | None:
        v = self.quoted(src, s, example, f'"{s.key}" takes text in quotes')
        return _clean(v.text) if v else None

    def number(self, src: ScriptFile, v: t.Value, what: str, lo: float, hi: float, integer: bool = False):
        if v.kind != "number" or (integer and not re.fullmatch(r"[-+]?\d+", v.text)):
            kind = "a whole number" if integer else "a number"
            self.error(src, v.span, "expected-number", f'{what} needs {kind}, not "{v.raw}"')
            return None
        x = int(v.text) if integer else float(v.text)
        if not lo <= x <= hi:
            self.error(src, v.span, "out-of-range", f"{what} must be between {_num(lo)} and {_num(hi)}, not {v.text}")
            return None
        return x

    def one_number(self, src, s, lo, hi, integer=False, example=""):
        if not self.need(src, s, 1, example):
            return None
        self.extra(src, s.values[1:], example)
        return self.number(src, s.values[0], f'"{s.key}"', lo, hi, integer)

    def word(self, src, s, example) -> str | None:
        if not self.need(src, s, 1, example):
            return None
        v = s.values[0]
        if v.kind not in ("word", "string", "name"):
            self.error(src, v.span, "expected-word", f'"{s.key}" needs a name, not "{v.raw}"', f"for example: {example}")
            return None
        self.extra(src, s.values[1:], example)
        return v.text

    def duration(self, src: ScriptFile, v: t.Value, what: str, allow_zero: bool = False) -> int | None:
        if v.kind == "number":
            self.error(src, v.span, "expected-duration", f'{what} needs a unit: "{v.raw}" what?',
                       f"write {v.raw}s for seconds or {v.raw}f for frames")
            return None
        if v.kind != "duration":
            self.error(src, v.span, "expected-duration", f'{what} needs a duration such as 3s, not "{v.raw}"')
            return None
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|f)", v.text)
        if len(m.group(1)) > 12:  # a Fraction of a thousand digits costs before any limit could be checked
            self.error(src, v.span, "too-long", f"{what} is longer than {MAX_DURATION_SECONDS // 60} minutes",
                       "split it into several shots")
            return None
        known = self._frames.get((v.text, self.fps))
        if known is not None:
            return known
        amount, unit = Fraction(m.group(1)), m.group(2)
        if unit == "f":
            if amount.denominator != 1:
                self.error(src, v.span, "expected-duration", "a number of frames must be whole")
                return None
            frames = int(amount)
        else:
            frames = round_frames(amount / 1000 if unit == "ms" else amount, self.fps)
        if frames <= 0 and not allow_zero:
            self.error(src, v.span, "too-short", f"{what} is shorter than one frame at {_num(float(self.fps))} fps")
            return None
        if frames > MAX_DURATION_SECONDS * self.fps:
            self.error(src, v.span, "too-long", f"{what} is longer than {MAX_DURATION_SECONDS // 60} minutes",
                       "split it into several shots")
            return None
        if not allow_zero:
            self._frames[(v.text, self.fps)] = frames
        return frames

    def options(self, src: ScriptFile, values, spec: dict[str, str], example: str) -> dict:
        """Parse `name value` options: spec maps option name → 'number', 'db' or 'duration'."""
        out: dict = {}
        i = 0
        values = list(values)
        while i < len(values):
            v = values[i]
            name = v.text.lower() if v.kind in ("word", "name") else None
            if name == "fade" and i + 1 < len(values) and values[i + 1].text in ("in", "out"):
                name = f"fade {values[i + 1].text}"
                i += 1
            if name not in spec:
                guess = did_you_mean(v.text, spec) if name else None
                self.error(src, v.span, "unknown-option", f'unexpected "{v.raw}"',
                           f'did you mean "{guess}"?' if guess else f"for example: {example}")
                return out
            if i + 1 >= len(values):
                self.error(src, v.span, "missing-value", f'"{name}" needs a value', f"for example: {example}")
                return out
            arg = values[i + 1]
            kind = spec[name]
            if kind == "duration":
                val = self.duration(src, arg, f'"{name}"', allow_zero=True)
            elif kind == "text":  # a quoted value, as written (the caller checks a file)
                val = arg if arg.kind == "string" else None
                if val is None:
                    self.error(src, arg.span, "expected-text", f'"{name}" needs its value in quotes, not "{arg.raw}"',
                               f"for example: {example}")
            elif kind == "word":
                val = arg.text.lower() if arg.kind in ("word", "name") else None
                if val is None:
                    self.error(src, arg.span, "expected-word", f'"{name}" needs a word, not "{arg.raw}"',
                               f"for example: {example}")
            elif kind == "db":
                if arg.kind == "amount" and arg.text.lower().endswith("db"):
                    val = float(arg.text[:-2])
                elif arg.kind == "number":
                    val = float(arg.text)
                else:
                    self.error(src, arg.span, "expected-number", f'"{name}" needs a level such as -12dB, not "{arg.raw}"')
                    val = None
            else:
                lo, hi = {"rate": (40, 500), "pitch": (0, 99), "take": (0, 2**32 - 1)}.get(name, (-1e9, 1e9))
                val = self.number(src, arg, f'"{name}"', lo, hi, integer=True)
            if val is not None:
                out[name] = val
            i += 2
        return out

    def model_file(self, src: ScriptFile, s: t.Setting, example: str) -> str | None:
        """`key "file" [one option]`: the quoted model file name (the option is the caller's)."""
        v = self.quoted(src, s, example, f"{s.key} needs a model file name in quotes", options=1)
        return v.text if v else None

    def voice(self, src: ScriptFile, s: t.Setting, example: str) -> f.Voice | None:
        """`voice "id" [rate N] [pitch N] [engine espeak|openai]`."""
        if not self.need(src, s, 1, example):
            return None
        v = s.values[0]
        if v.kind not in ("string", "word"):
            self.error(src, v.span, "expected-text", f'"{s.key}" needs a voice name in quotes', f"for example: {example}")
            return None
        opts = self.options(src, s.values[1:], {"rate": "number", "pitch": "number", "engine": "word"}, example)
        engine = opts.get("engine", "espeak")
        if engine not in VOICE_ENGINES:
            at = next(x for x in s.values[1:] if x.text.lower() == engine)
            guess = did_you_mean(engine, VOICE_ENGINES)
            self.error(src, at.span, "unknown-engine", f'there is no voice engine "{at.raw}"',
                       f'did you mean "{guess}"?' if guess else "engines: " + ", ".join(VOICE_ENGINES))
            return None
        return f.Voice(id=v.text, rate=opts.get("rate", 175), pitch=opts.get("pitch", 50), engine=engine,
                       where=f.Where(file=src.display, line=v.span.line, column=v.span.column))

    def lora(self, src: ScriptFile, s: t.Setting) -> f.Lora | None:
        example = 'lora "watercolor.safetensors" 0.8 0.6  (file, model strength, clip strength)'
        if not self.need(src, s, 1, example):
            return None
        v = s.values[0]
        if v.kind != "string":
            self.error(src, v.span, "expected-text", "lora needs a file name in quotes", f"for example: {example}")
            return None
        strengths = []
        for sv in s.values[1:3]:
            x = self.number(src, sv, "a LoRA strength", -20, 20)
            if x is None:
                return None
            if not 0 <= x <= 2:
                self.warn(src, sv.span, "lora-strength", f"LoRA strength {sv.text} is outside 0–2",
                          "strengths above 2 or below 0 usually burn or invert the image")
            strengths.append(x)
        self.extra(src, s.values[3:], example)
        model = strengths[0] if strengths else 1.0
        clip = strengths[1] if len(strengths) > 1 else model
        return f.Lora(file=v.text, model=model, clip=clip,
                      where=f.Where(file=src.display, line=v.span.line, column=v.span.column))

    def music(self, src, s: t.Setting, target: dict) -> None:
        example = 'music "music/storm.ogg" volume -12dB fade in 2s fade out 3s duck -10dB'
        if not self.need(src, s, 1, example):
            return
        v = s.values[0]
        if v.kind == "word" and v.text == "off":
            target["music_off"] = True
            return
        if v.kind == "word" and v.text == "generate":
            self.generated_music(src, s, target)
            return
        path = self.file_value(src, v, "music file", "audio")
        opts = self.options(src, s.values[1:], MUSIC_OPTIONS, example)
        if path:
            target["music"] = f.MusicCue(file=path, **_mix_of(opts), where=_where(src, v))

    def generated_music(self, src, s: t.Setting, target: dict) -> None:
        """`music generate "words" 60s [using "file"] [take N] [lyrics "..."] [fallback "file"]` and
        the mix options of a file cue. (`model` and `seed` are statements of their own on a line.)"""
        example = 'music generate "warm piano, slow, hopeful" 60s fade in 2s'
        words = s.values[1] if len(s.values) > 1 else None
        if words is None or words.kind != "string" or not words.text.strip():
            at = words.span if words is not None else s.values[0].span
            self.error(src, at, "expected-text", "music generate needs the music described in quotes",
                       f"for example: {example}")
            return
        if len(s.values) < 3:
            self.error(src, words.span, "missing-value", "music generate needs how long a piece to make",
                       f"for example: {example}")
            return
        frames = self.duration(src, s.values[2], "the music")
        opts = self.options(src, s.values[3:], {**MUSIC_OPTIONS, "using": "text", "take": "number",
                                               "lyrics": "text", "fallback": "text"}, example)
        fallback = self.file_value(src, opts["fallback"], "music file", "audio") if "fallback" in opts else ""
        if frames is None or fallback is None:
            return
        text = _clean(words.text)
        prompt = f.MusicPrompt(text=text, frames=frames,
                               model=opts["using"].text if "using" in opts else f.MusicPrompt.model_fields["model"].default,
                               # the same words give the same music; `take N` asks for another
                               seed=opts.get("take", int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)),
                               lyrics=opts["lyrics"].text if "lyrics" in opts else "")
        target["music"] = f.MusicCue(file=fallback, generate=prompt, **_mix_of(opts), where=_where(src, s.values[0]))

    def camera(self, src: ScriptFile, s: t.Setting) -> list[f.CameraMove] | None:
        example = "camera push in slow  |  camera pan left fast 30% ease-out  |  camera orbit right 20deg"
        if not self.need(src, s, 1, example):
            return None
        groups: list[list[t.Value]] = [[]]
        for v in s.values:
            if v.kind == "word" and v.text.lower() in ("and", "+"):
                groups.append([])
            else:
                groups[-1].append(v)
        moves = []
        for g in groups:
            if not g:
                self.error(src, s.span, "camera", "a camera move is missing around \"and\"", example)
                return None
            words = [v.text.lower() for v in g]
            found = None
            for n in (2, 1):
                if tuple(words[:n]) in vocab.CAMERA_MOVES:
                    found = n
                    break
            if found is None:
                n = 0
                while n < len(g) and g[n].kind == "word" and words[n] not in vocab.SPEEDS and words[n] not in vocab.EASINGS:
                    n += 1
                n = max(n, 1)
                phrase = " ".join(words[:n])
                guess = did_you_mean(phrase, vocab.CAMERA_MOVE_NAMES, 0.5)
                if not guess and len(words[:n]) == 1:
                    guess = next((m for m in vocab.CAMERA_MOVE_NAMES if m.startswith(phrase + " ")), None)
                span = Span(line=g[0].span.line, column=g[0].span.column, end_line=g[n - 1].span.end_line,
                            end_column=g[n - 1].span.end_column)
                self.error(src, span, "unknown-camera-move", f'unknown camera move "{phrase}"',
                           f'did you mean "{guess}"?' if guess else
                           "moves are: " + ", ".join(vocab.CAMERA_MOVE_NAMES))
                return None
            move, direction = vocab.CAMERA_MOVES[tuple(words[:found])]
            speed, easing, amount = "medium", "ease-in-out", None
            for v in g[found:]:
                w = v.text.lower()
                if v.kind == "word" and w in vocab.SPEEDS:
                    speed = vocab.SPEEDS[w]
                elif v.kind == "word" and w in vocab.EASINGS:
                    easing = vocab.EASINGS[w]
                elif v.kind == "amount" and move != "static":
                    amount = self.camera_amount(src, v, move)
                    if amount is None:
                        return None
                else:
                    guess = did_you_mean(w, [*vocab.SPEEDS, *vocab.EASINGS])
                    self.error(src, v.span, "camera", f'"{v.raw}" is not a camera speed, easing or amount',
                               f'did you mean "{guess}"?' if guess else
                               "speeds: slow, medium, fast; easings: linear, ease-in, ease-out, ease-in-out; "
                               "amounts: 30% or 20deg")
                    return None
            if amount is None:
                if move == "static":
                    amount = 0.0
                elif move == "shake":
                    amount = vocab.SHAKE_AMOUNTS[speed]
                else:
                    amount = vocab.DEFAULT_AMOUNTS[vocab.AMOUNT_UNITS[move]][speed]
            moves.append(f.CameraMove(move=move, direction=direction, speed=speed, amount=amount, easing=easing))
        if len(moves) > 1 and any(m.move == "static" for m in moves):
            self.error(src, s.span, "camera", "a static camera cannot also move", example)
            return None
        return moves

    def camera_amount(self, src, v: t.Value, move: str) -> float | None:
        m = re.fullmatch(r"([-+]?\d+(?:\.\d+)?)(%|deg|dB|db|x)", v.text)
        x, unit = float(m.group(1)), m.group(2)
        want = vocab.AMOUNT_UNITS[move]
        if unit == "x" and move in ("push", "pull", "zoom"):
            if x < 1:
                self.error(src, v.span, "camera", f"a {move} factor must be 1x or more, not {v.text}")
                return None
            return round((x - 1) * 100, 6)
        if unit != want:
            example = "20deg" if want == "deg" else "30%"
            self.error(src, v.span, "camera", f'{"an" if move[0] in "aeiou" else "a"} {move} is measured in {"degrees" if want == "deg" else "percent"}, not "{v.text}"',
                       f"for example: {example}")
            return None
        if x <= 0 or (unit == "%" and x > 400) or (unit == "deg" and x > 360):
            self.error(src, v.span, "camera", f"camera amount {v.text} is out of range",
                       "percent between 0 and 400, degrees between 0 and 360")
            return None
        return x

    def transition(self, src: ScriptFile, tr: t.Transition) -> f.Transition | None:
        example = "> dissolve 0.5s  |  > fade to black 1s  |  > wipe left 0.5s  |  > cut"
        words = [v for v in tr.values if v.kind in ("word", "name")]
        durations = [v for v in tr.values if v.kind not in ("word", "name")]
        if not words:
            self.error(src, tr.span, "transition", "a transition needs a kind", example)
            return None
        first = words[0].text.lower()
        if first == "continue":  # a cut, and the next shot's first frame is this one's last
            self.extra(src, [*words[1:], *durations], "> continue")
            return f.Transition(kind="cut", continues=True)
        kind = vocab.TRANSITIONS.get(first)
        if kind is None:
            guess = did_you_mean(first, vocab.TRANSITIONS)
            self.error(src, words[0].span, "unknown-transition", f'unknown transition "{words[0].text}"',
                       f'did you mean "{guess}"?' if guess else "transitions: cut, dissolve, fade, wipe, continue")
            return None
        rest = [w.text.lower() for w in words[1:]]
        direction = None
        if kind == "fade":
            if rest and rest not in (["to", "black"], ["from", "black"], ["through", "black"], ["out"], ["in"]):
                self.error(src, words[1].span, "transition", f'a fade goes "to black" or "from black", not "{" ".join(rest)}"', example)
                return None
            if rest:
                direction = {"to": "out", "out": "out", "from": "in", "in": "in"}.get(rest[0])
        elif kind == "wipe":
            if len(rest) > 1 or (rest and rest[0] not in vocab.WIPE_DIRECTIONS):
                self.error(src, words[1].span, "transition", "a wipe goes left, right, up or down", example)
                return None
            direction = rest[0] if rest else "left"
        elif rest:
            self.error(src, words[1].span, "transition", f'unexpected "{words[1].text}" after {first}', example)
            return None
        frames = round_frames(Fraction(vocab.TRANSITION_DEFAULT_SECONDS[kind]), self.fps)
        if len(durations) > 1:
            self.extra(src, durations[1:], example)
        if durations:
            if kind == "cut":
                self.error(src, durations[0].span, "transition", "a cut takes no time", "remove the duration, or use dissolve")
                return None
            x = self.duration(src, durations[0], "a transition")
            if x is None:
                return None
            frames = x
        return f.Transition(kind=kind, direction=direction, frames=frames)

    # -- the film

    def film_format(self, items) -> tuple[int, int]:
        width, height = 1280, 720
        for src, item in items:
            if not isinstance(item, t.SettingsLine):
                continue
            for s in item.settings:
                if s.key != "format":
                    continue
                example = "format 1280x720 @ 24fps"
                vals = [v for v in s.values if v.kind != "at"]
                ok = bool(vals)
                given: set[str] = set()
                for v in vals:
                    if v.kind in given:
                        what = "sizes" if v.kind == "size" else "frame rates"
                        self.error(src, v.span, "bad-format", f"format gives two {what}", f"keep one, e.g. {example}")
                        continue
                    given.add(v.kind)
                    if v.kind == "size":
                        w, h = (int(x) for x in v.text.split("x"))
                        if w % 8 or h % 8 or not (64 <= w <= 8192 and 64 <= h <= 8192):
                            self.error(src, v.span, "bad-format", f"{v.text} cannot be rendered",
                                       "width and height must be multiples of 8 between 64 and 8192, e.g. 1280x720")
                        else:
                            width, height = w, h
                    elif v.kind == "rate":
                        fps = Fraction(v.text[:-3])
                        if v.text[:-3] in ("23.976", "29.97", "59.94"):
                            fps = Fraction(round(float(fps) * 1.001 * 1000), 1001)
                        if not 1 <= fps <= 240:
                            self.error(src, v.span, "bad-format", f"a frame rate of {v.text} is out of range", "1fps to 240fps")
                        else:
                            self.fps = fps
                    else:
                        ok = False
                        self.error(src, v.span, "bad-format", f'unexpected "{v.raw}" in format', f"for example: {example}")
                if not ok and not vals:
                    self.error(src, s.span, "missing-value", "format needs a size and a frame rate", f"for example: {example}")
        return width, height


MUSIC_OPTIONS = {"volume": "db", "fade in": "duration", "fade out": "duration", "duck": "db"}


def _mix_of(opts: dict) -> dict:
    """How a cue is mixed, file or generated: its level, fades and ducking."""
    return {"volume_db": opts.get("volume", -12.0), "fade_in": opts.get("fade in", 0),
            "fade_out": opts.get("fade out", 0), "duck_db": opts.get("duck", -10.0)}


def _where(src, v) -> f.Where:
    return f.Where(file=src.display, line=v.span.line, column=v.span.column)
