"""Syntax tree → resolved film: includes, the defaults cascade, names, vocabularies, frames.

Film settings cascade to scenes and scenes to shots; a shot may override any of them.
Every independent problem is reported; the film is returned only when there is no error.
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from storylang import film as f, probe
from storylang import vocabulary as vocab
from storylang.diagnostics import Diagnostic, Span, did_you_mean, has_errors
from storylang.syntax import keywords
from storylang.syntax import tree as t
from storylang.loader import Loaded, Loader, Source, missing_file
from storylang.syntax.parse import paused_gc

DEFAULT_SHOT_SECONDS = Fraction(3)

CASCADE_KEYS = keywords.allowed_in("film") & keywords.allowed_in("scene") & keywords.allowed_in("shot")
REPEATABLE_KEYS = keywords.REPEATABLE  # settings that add up rather than replace: given twice, both count
FILM_KEYS = keywords.allowed_in("film")
CARD_SECONDS = Fraction(3)  # how long the title and end cards last unless the script says
SCENE_KEYS = keywords.allowed_in("scene")
SHOT_KEYS = keywords.allowed_in("shot")
CHARACTER_KEYS = keywords.allowed_in("character")
WHERE_KEY_BELONGS = {k: keywords.where_it_belongs(k) for k in keywords.ALL}


# Problems that may only follow from a statement set aside after a syntax error (a character
# whose declaration was broken, a transition whose shot was).
_CASCADING = {"unknown-character", "unused-character", "duplicate-character", "duplicate-shot", "duplicate-cast",
              "transition", "transition-too-long", "keyframes-and-source"}


def derive_seed(*parts: object) -> int:
    """A seed from stable identity (never from a position in the script)."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big")


def round_frames(seconds: Fraction, fps: Fraction) -> int:
    """Seconds → whole frames, rounding half up (2.5 frames → 3)."""
    x = seconds * fps
    return int((x + Fraction(1, 2)).__floor__())


# ---------------------------------------------------------------------- context


@dataclass
class _Defaults:
    """What cascades from the film to scenes and from scenes to shots."""

    render: dict = field(default_factory=dict)
    loras: list = field(default_factory=list)
    seed_base: int = 0
    seed_fixed: int | None = None
    duration: int | None = None
    overrun: str = "extend"
    narrator: f.Voice = field(default_factory=lambda: f.Voice(id="en-us"))
    setting: str = ""
    lighting: str = ""
    mood: str = ""
    camera: tuple = ()
    seen: dict = field(default_factory=dict)  # key → where it was set on this film, scene or shot

    def child(self) -> "_Defaults":
        c = copy.copy(self)
        c.render = dict(self.render)
        c.loras = list(self.loras)
        c.seed_fixed = None
        c.seen = {}
        return c


class _Resolver:
    def __init__(self, root: Path):
        self.root = root
        self.diagnostics: list[Diagnostic] = []
        self.files: list[str] = []
        self.fps = Fraction(24)

    # -- messages

    def error(self, src: Source, span: Span | None, code: str, message: str, hint: str | None = None):
        self.diagnostics.append(
            Diagnostic(severity="error", code=code, message=message, file=src.display, span=span, hint=hint)
        )

    def warn(self, src: Source, span: Span | None, code: str, message: str, hint: str | None = None):
        self.diagnostics.append(
            Diagnostic(severity="warning", code=code, message=message, file=src.display, span=span, hint=hint)
        )

    # -- files

    def relative(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.root)).as_posix()

    def file_value(self, src: Source, v: t.Value, what: str, kind: str) -> str | None:
        """A quoted path, relative to the script naming it → path relative to the film root.

        The file must be of `kind` ("image", "audio" or "video") and readable by the build.
        """
        if v.kind != "string":
            self.error(src, v.span, "expected-file", f"{what} needs a file name in quotes", f'write it as "{v.text}"')
            return None
        target = (src.path.parent / v.text)
        if not target.is_file():
            self.diagnostics.append(missing_file(src, v, what))
            return None
        wrong = probe.problem(target, kind)
        if wrong:
            self.error(src, v.span, "bad-media", f'{what} "{v.text}" {wrong}', probe.hint(kind))
            return None
        return self.relative(target.resolve())

    def card(self, src: Source, s: t.Setting, film: dict) -> None:
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

    # -- values

    def need(self, src: Source, s: t.Setting, count: int, example: str) -> bool:
        if len(s.values) < count:
            self.error(src, s.span, "missing-value", f'"{s.key}" needs a value', f"for example: {example}")
            return False
        return True

    def extra(self, src: Source, values, example: str) -> None:
        if values:
            v = values[0]
            span = Span(line=v.span.line, column=v.span.column, end_line=values[-1].span.end_line,
                        end_column=values[-1].span.end_column)
            self.error(src, span, "extra-value", f'unexpected "{v.raw}"', f"for example: {example}")

    def quoted(self, src: Source, s: t.Setting, example: str, message: str, options: int = 0) -> t.Value | None:
        """The setting's first value, which must be quoted text, followed by at most `options` more."""
        if not self.need(src, s, 1, example):
            return None
        v = s.values[0]
        if v.kind != "string":
            self.error(src, v.span, "expected-text", message, f"for example: {example}")
            return None
        self.extra(src, s.values[1 + options:], example)
        return v

    def text(self, src: Source, s: t.Setting, example: str) -> str | None:
        v = self.quoted(src, s, example, f'"{s.key}" takes text in quotes')
        return _clean(v.text) if v else None

    def number(self, src: Source, v: t.Value, what: str, lo: float, hi: float, integer: bool = False):
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

    def duration(self, src: Source, v: t.Value, what: str, allow_zero: bool = False) -> int | None:
        if v.kind == "number":
            self.error(src, v.span, "expected-duration", f'{what} needs a unit: "{v.raw}" what?',
                       f"write {v.raw}s for seconds or {v.raw}f for frames")
            return None
        if v.kind != "duration":
            self.error(src, v.span, "expected-duration", f'{what} needs a duration such as 3s, not "{v.raw}"')
            return None
        m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|f)", v.text)
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
        return frames

    def options(self, src: Source, values, spec: dict[str, str], example: str) -> dict:
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
            elif kind == "db":
                if arg.kind == "amount" and arg.text.lower().endswith("db"):
                    val = float(arg.text[:-2])
                elif arg.kind == "number":
                    val = float(arg.text)
                else:
                    self.error(src, arg.span, "expected-number", f'"{name}" needs a level such as -12dB, not "{arg.raw}"')
                    val = None
            else:
                lo, hi = {"rate": (40, 500), "pitch": (0, 99)}.get(name, (-1e9, 1e9))
                val = self.number(src, arg, f'"{name}"', lo, hi, integer=True)
            if val is not None:
                out[name] = val
            i += 2
        return out

    def model_file(self, src: Source, s: t.Setting, example: str) -> str | None:
        """`key "file" [one option]`: the quoted model file name (the option is the caller's)."""
        v = self.quoted(src, s, example, f"{s.key} needs a model file name in quotes", options=1)
        return v.text if v else None

    def voice(self, src: Source, s: t.Setting, example: str) -> f.Voice | None:
        if not self.need(src, s, 1, example):
            return None
        v = s.values[0]
        if v.kind not in ("string", "word"):
            self.error(src, v.span, "expected-text", f'"{s.key}" needs a voice name in quotes', f"for example: {example}")
            return None
        opts = self.options(src, s.values[1:], {"rate": "number", "pitch": "number"}, example)
        return f.Voice(id=v.text, rate=opts.get("rate", 175), pitch=opts.get("pitch", 50))

    def lora(self, src: Source, s: t.Setting) -> f.Lora | None:
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
        return f.Lora(file=v.text, model=model, clip=clip)

    # -- settings

    def apply(self, src: Source, line: t.SettingsLine, d: _Defaults, allowed: set[str], place: str,
              film: dict | None = None, shot: dict | None = None, scene: dict | None = None) -> None:
        for s in line.settings:
            key = s.key
            if key not in allowed:
                where = WHERE_KEY_BELONGS.get(key)
                self.error(src, s.key_span, "misplaced-setting", f'"{key}" cannot be set on {place}',
                           f'"{key}" belongs to {where}' if where else None)
                continue
            if self.once(src, s, d.seen, place):
                self.apply_one(src, s, d, film, shot, scene)

    def once(self, src: Source, s: t.Setting, seen: dict, place: str) -> bool:
        """False (and an error) for a setting given a second time on the same film, scene, shot or character."""
        if s.key in REPEATABLE_KEYS:
            return True
        first = seen.get(s.key)
        if first is None:
            seen[s.key] = (src, s.key_span.line)
            return True
        self.error(src, s.key_span, "setting-twice", f'"{s.key}" is set twice on {place}',
                   f"it is already set at {Path(first[0].display).name}:{first[1]}; keep one")
        return False

    def apply_one(self, src, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        """Apply one setting to the film, scene or shot being built (`d`: its defaults)."""
        setter = SETTERS.get(s.key)
        if setter is not None:
            setter(self, src, s, d, film, shot, scene)

    def _set_card(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        self.card(src, s, film)

    def _set_author(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.text(src, s, 'author "Ada Lovelace"')) is not None:
            film["author"] = x

    def _set_text(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        key = s.key
        r = d.render
        if (x := self.text(src, s, f'{key} "..."')) is not None:
            if key in ("style", "negative"):
                r[key] = x
            else:
                setattr(d, key, x)

    def _set_model(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        key = s.key
        r = d.render
        if (x := self.text(src, s, f'{key} "file.safetensors"')) is not None:
            r[key] = x

    def _set_word(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        key = s.key
        r = d.render
        example = {"sampler": "sampler dpmpp_2m", "scheduler": "scheduler karras", "template": "template hires"}[key]
        if (x := self.word(src, s, example)) is not None:
            r[key] = x

    def _set_number(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        field_name, lo, hi, integer, example = NUMBER_SETTINGS[s.key]
        if (x := self.one_number(src, s, lo, hi, integer, example)) is not None:
            d.render[field_name] = x

    def _set_seed(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.one_number(src, s, 0, 2**63 - 1, True, "seed 1234")) is not None:
            if shot is not None:
                d.seed_fixed = x
            else:
                d.seed_base = x

    def _set_narrator(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (v := self.voice(src, s, 'narrator "en-us" rate 160')) is not None:
            d.narrator = v

    def _set_duration(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if self.need(src, s, 1, "duration 4s"):
            self.extra(src, s.values[1:], "duration 4s")
            if (x := self.duration(src, s.values[0], "a shot's duration")) is not None:
                d.duration = x

    def _set_overrun(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.word(src, s, "overrun extend")) is not None:
            if x not in ("extend", "error"):
                self.error(src, s.values[0].span, "bad-value", f'overrun is "extend" or "error", not "{x}"',
                           "extend: a shot grows to fit its speech; error: the build stops")
            else:
                d.overrun = x

    def _set_lora(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.lora(src, s)) is not None:
            d.loras.append(x)

    def _set_upscale(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        r = d.render
        example = 'upscale "4x-UltraSharp.pth" 2x'
        if (x := self.model_file(src, s, example)) is not None:
            r["upscale_model"] = x
            for extra in s.values[1:2]:
                if extra.kind == "amount" and extra.text.endswith("x") and 1 <= float(extra.text[:-1]) <= 8:
                    r["upscale_factor"] = float(extra.text[:-1])
                else:
                    self.error(src, extra.span, "bad-value", f'upscale factor is written 1.5x … 8x, not "{extra.raw}"')

    def _set_motion(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        r = d.render
        if (x := self.text(src, s, 'motion "mm_sd_v15_v2.ckpt"')) is not None:
            r["motion_model"] = x

    def _set_controlnet(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        r = d.render
        example = 'controlnet "control_v11p_sd15_canny.pth" canny'
        if (x := self.model_file(src, s, example)) is not None:
            r["controlnet"] = x
            for extra in s.values[1:2]:
                if extra.text not in ("depth", "pose", "lineart", "canny"):
                    self.error(src, extra.span, "bad-value",
                               f'controlnet kind is depth, pose, lineart or canny, not "{extra.text}"')
                else:
                    r["controlnet_kind"] = extra.text

    def _set_camera(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        moves = self.camera(src, s)
        if moves is not None:
            if shot is not None:
                shot.setdefault("camera", []).extend(moves)
            else:
                d.camera = tuple(moves)

    def _set_music(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        self.music(src, s, scene if scene is not None else film)

    def _set_action(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.text(src, s, 'action "the beam sweeps across the waves"')) is not None:
            shot["action"] = (shot.get("action", "") + " " + x).strip()

    def _set_narrate(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.text(src, s, 'narrate "Every night, Mara climbed the stairs."')) is not None:
            if x:
                shot.setdefault("lines", []).append(("narration", None, None, x, s.span))
            else:
                self.error(src, s.values[0].span, "empty-line", "narration is empty")

    def _set_at(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        example = 'at 2s "the door opens"'
        if self.need(src, s, 2, example):
            frame = self.duration(src, s.values[0], '"at"', allow_zero=True)
            v = s.values[1]
            if v.kind != "string":
                self.error(src, v.span, "expected-text", "what happens at that time goes in quotes", example)
            elif frame is not None:
                shot.setdefault("schedule", []).append((frame, _clean(v.text), s.span))
            self.extra(src, s.values[2:], example)

    def _set_keyframes(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        example = 'keyframes "start.png" to "end.png"'
        vals = [v for v in s.values if not (v.kind == "word" and v.text == "to")]
        if len(vals) != 2:
            self.error(src, s.span, "keyframes", "keyframes needs a start image and an end image", example)
        else:
            a = self.file_value(src, vals[0], "keyframe image", "image")
            b = self.file_value(src, vals[1], "keyframe image", "image")
            if a and b:
                shot["keyframes"] = f.Keyframes(start=a, end=b)

    def _set_source(self, src: Source, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        example = 'source "footage/take3.mp4" from 2s to 5s'
        if self.need(src, s, 1, example):
            path = self.file_value(src, s.values[0], "source clip", "video")
            opts = self.options(src, s.values[1:], {"from": "duration", "to": "duration"}, example)
            if path:
                start, end = opts.get("from", 0), opts.get("to")
                if end is not None and end <= start:
                    self.error(src, s.span, "bad-range", "the clip's end comes before its start", example)
                else:
                    shot["source"] = f.SourceClip(file=path, start=start, end=end)

    def music(self, src, s: t.Setting, target: dict) -> None:
        example = 'music "music/storm.ogg" volume -12dB fade in 2s fade out 3s duck -10dB'
        if not self.need(src, s, 1, example):
            return
        v = s.values[0]
        if v.kind == "word" and v.text == "off":
            target["music_off"] = True
            return
        path = self.file_value(src, v, "music file", "audio")
        opts = self.options(src, s.values[1:], {"volume": "db", "fade in": "duration", "fade out": "duration",
                                                "duck": "db"}, example)
        if path:
            target["music"] = f.MusicCue(file=path, volume_db=opts.get("volume", -12.0),
                                         fade_in=opts.get("fade in", 0), fade_out=opts.get("fade out", 0),
                                         duck_db=opts.get("duck", -10.0))

    def camera(self, src: Source, s: t.Setting) -> list[f.CameraMove] | None:
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

    def transition(self, src: Source, tr: t.Transition) -> f.Transition | None:
        example = "> dissolve 0.5s  |  > fade to black 1s  |  > wipe left 0.5s  |  > cut"
        words = [v for v in tr.values if v.kind in ("word", "name")]
        durations = [v for v in tr.values if v.kind not in ("word", "name")]
        if not words:
            self.error(src, tr.span, "transition", "a transition needs a kind", example)
            return None
        first = words[0].text.lower()
        kind = vocab.TRANSITIONS.get(first)
        if kind is None:
            guess = did_you_mean(first, vocab.TRANSITIONS)
            self.error(src, words[0].span, "unknown-transition", f'unknown transition "{words[0].text}"',
                       f'did you mean "{guess}"?' if guess else "transitions: cut, dissolve, fade, wipe")
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

    def resolve(self, loaded: Loaded, display: str) -> f.Film | None:
        """The film of a loaded script (None if it has errors); diagnostics go to self.diagnostics."""
        self.files = loaded.files
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
        shot_sources: list[tuple[Source, t.Shot]] = []
        transitions: list[tuple[Source, t.Transition, f.Transition, int]] = []  # (.., shots before it)
        numbers: dict[str, tuple[Source, t.Shot]] = {}
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
        if has_errors(self.diagnostics):
            return None
        return f.Film(
            title=film.get("title", Path(display).stem.replace("_", " ").title()),
            author=film.get("author", ""),
            title_frames=film.get("title_frames", 0), end=film.get("end", ""), end_frames=film.get("end_frames", 0),
            width=width, height=height, fps_num=self.fps.numerator, fps_den=self.fps.denominator,
            narrator=base.narrator, fade_in=film_fade_in, fade_out=film_fade_out,
            characters=tuple(characters.values()), scenes=tuple(scenes), shots=tuple(shots),
            script=self.files[0] if self.files else display, files=tuple(self.files),
        )

    def _characters(self, items, base: _Defaults):
        """The declared characters by name, and where each was declared."""
        characters: dict[str, f.Character] = {}
        char_src: dict[str, tuple[Source, t.Character]] = {}
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

    def _warn_unused(self, char_src: dict, used: set[str], main_src: Source) -> None:
        """A character of the main script who never appears is a warning (an included bible's are not)."""
        for name, (src, node) in char_src.items():
            if name not in used and src is main_src:
                self.warn(src, node.name_span, "unused-character", f"character {name} never appears",
                          f"put them in a shot (shot close on {name}) or remove them")

    def _unique_shot(self, src: Source, part: t.Shot, shot: f.Shot, numbers: dict, ids: dict) -> f.Shot:
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
                           f"shot {shot.id} lasts {_secs(shot.frames, self.fps)} but its transitions take {_secs(into + out, self.fps)}",
                           "lengthen the shot or shorten its transitions")

    def _empty(self, display: str) -> f.Film:
        return f.Film(title=Path(display).stem, script=display)

    def character(self, src: Source, node: t.Character, base: _Defaults) -> f.Character | None:
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
                               "a character has look, lora, voice, reference, seed and negative")
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
        return f.Character(
            name=node.name, look=info.get("look", ""), negative=info.get("negative", ""),
            seed=seed if seed is not None else d.seed_base,
            voice=info.get("voice", base.narrator), loras=tuple(loras), reference=info.get("reference"),
            where=f.Where(file=src.display, line=node.span.line, column=node.span.column),
        )

    def shot(self, src: Source, node: t.Shot, scene_d: _Defaults, scene_index: int, heading: str):
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
            voice = self.characters[speaker].voice if speaker else d.narrator
            lines.append(f.Line(kind=kind, speaker=speaker, parenthetical=paren, text=text, voice=voice,
                                where=f.Where(file=src.display, line=span.line, column=span.column)))
        schedule = []
        for frame, text, span in sorted(info.get("schedule", []), key=lambda x: x[0]):
            if frame >= frames:
                self.error(src, span, "cue-outside-shot", f"this cue at {_secs(frame, self.fps)} is past the shot's end ({_secs(frames, self.fps)})")
            elif schedule and schedule[-1].frame == frame:
                self.error(src, span, "duplicate-cue", f"two cues at {_secs(frame, self.fps)}")
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
        render = f.RenderSettings(**{**d.render, "loras": tuple(loras), "seed": seed})
        shot = f.Shot(
            id=identity, number=node.number, name=name or None, scene=scene_index, framing=framing, angle=angle, cast=tuple(cast),
            frames=frames, action=info.get("action", ""), setting=d.setting, lighting=d.lighting, mood=d.mood,
            camera=tuple(info.get("camera", d.camera)), lines=tuple(lines), schedule=tuple(schedule),
            keyframes=info.get("keyframes"), source=info.get("source"), overrun=d.overrun, render=render,
            where=f.Where(file=src.display, line=node.span.line, column=node.span.column),
        )
        return shot, trailing

    def framing(self, src: Source, node: t.Shot) -> tuple[str, str | None]:
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


def _clean(text: str) -> str:
    """Writers' text with runs of whitespace (line breaks of long text) folded to one space."""
    return re.sub(r"\s+", " ", text).strip()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _secs(frames: int, fps: Fraction) -> str:
    s = Fraction(frames) / fps
    return f"{float(s):g}s"


# render settings that are one number: (field, lowest, highest, whole, example)
NUMBER_SETTINGS = {
    "steps": ("steps", 1, 10000, True, "steps 28"),
    "cfg": ("cfg", 0, 100, False, "cfg 5.5"),
    "denoise": ("denoise", 0, 1, False, "denoise 0.6"),
    "clip skip": ("clip_skip", 1, 24, True, "clip skip 2"),
}

# one setter per setting; `note` and `format` (read before everything else) set nothing here
SETTERS = {
    "title": _Resolver._set_card,
    "end": _Resolver._set_card,
    "author": _Resolver._set_author,
    "style": _Resolver._set_text,
    "negative": _Resolver._set_text,
    "setting": _Resolver._set_text,
    "lighting": _Resolver._set_text,
    "mood": _Resolver._set_text,
    "model": _Resolver._set_model,
    "vae": _Resolver._set_model,
    "sampler": _Resolver._set_word,
    "scheduler": _Resolver._set_word,
    "template": _Resolver._set_word,
    "steps": _Resolver._set_number,
    "cfg": _Resolver._set_number,
    "denoise": _Resolver._set_number,
    "clip skip": _Resolver._set_number,
    "seed": _Resolver._set_seed,
    "narrator": _Resolver._set_narrator,
    "duration": _Resolver._set_duration,
    "overrun": _Resolver._set_overrun,
    "lora": _Resolver._set_lora,
    "upscale": _Resolver._set_upscale,
    "motion": _Resolver._set_motion,
    "controlnet": _Resolver._set_controlnet,
    "camera": _Resolver._set_camera,
    "music": _Resolver._set_music,
    "action": _Resolver._set_action,
    "narrate": _Resolver._set_narrate,
    "at": _Resolver._set_at,
    "keyframes": _Resolver._set_keyframes,
    "source": _Resolver._set_source,
}


_LOADER = Loader()  # parsed files are remembered by content across loads in one process


def resolve(loaded: Loaded, root: Path, display: str) -> tuple[f.Film | None, list[Diagnostic]]:
    """Resolve a loaded script. Returns (film or None, diagnostics of loading and resolving)."""
    r = _Resolver(root)
    r.diagnostics.extend(loaded.diagnostics)
    with paused_gc():
        film = r.resolve(loaded, display)
    diagnostics = r.diagnostics
    if loaded.recovered:
        # Statements with syntax errors were set aside: keep only what cannot be their echo.
        diagnostics = [d for d in diagnostics if d.code not in _CASCADING]
        film = None
    return film, diagnostics


def resolve_file(path: Path, display: str | None = None,
                 loader: Loader | None = None) -> tuple[f.Film | None, list[Diagnostic], dict[str, str]]:
    """Load and resolve a script. Returns (film or None, diagnostics, source texts by file name)."""
    display = display or str(path)
    # one pause of the collector for both: it would otherwise walk the fresh trees in between
    with paused_gc():
        loaded = (loader or _LOADER).load(path, display)
        film, diagnostics = resolve(loaded, path.resolve().parent, display)
    return film, diagnostics, loaded.sources
