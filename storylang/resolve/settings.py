"""The statements as a table of handlers: one setter per statement (SETTERS), each writing into
the film, scene or shot being resolved."""

from __future__ import annotations

from pathlib import Path

from storylang import film as f
from storylang.diagnostics import did_you_mean
from storylang.syntax import tree as t
from storylang.loader import ScriptFile

from storylang.resolve.values import Values
from storylang.resolve.rules import REPEATABLE_KEYS, WHERE_KEY_BELONGS, _Defaults, _clean


class Settings(Values):
    """Applying settings lines: where each may stand, given once, then its handler."""

    # -- settings

    def apply(self, src: ScriptFile, line: t.SettingsLine, d: _Defaults, allowed: set[str], place: str,
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

    def once(self, src: ScriptFile, s: t.Setting, seen: dict, place: str) -> bool:
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

    def _set_card(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        self.card(src, s, film)

    def _set_author(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.text(src, s, 'author "Ada Lovelace"')) is not None:
            film["author"] = x

    def _set_text(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        key = s.key
        r = d.render
        if (x := self.text(src, s, f'{key} "..."')) is not None:
            if key in ("style", "negative"):
                r[key] = x
            else:
                setattr(d, key, x)

    def _set_model(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        key = s.key
        r = d.render
        if key == "vae":
            if (x := self.text(src, s, 'vae "file.safetensors"')) is not None:
                r[key] = x
            return
        # `model "file" [family]`: the family where the file's name cannot tell it
        example = 'model "flux1-dev.safetensors" flux1'
        v = self.quoted(src, s, example, '"model" takes the model file\'s name in quotes', options=1)
        if v is None:
            return
        r["model"], r["family"] = _clean(v.text), None
        if len(s.values) > 1:
            word = s.values[1]
            known = self.model_families()
            if word.kind not in ("word", "name") or word.text.lower() not in known:
                guess = did_you_mean(word.text.lower(), list(known))
                self.error(src, word.span, "unknown-family", f'"{word.raw}" is not a model family',
                           f'did you mean "{guess}"?' if guess else "families: " + ", ".join(sorted(known)))
                return
            r["family"] = word.text.lower()

    def _set_start(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        """`start "picture.png"` or `start still "flux1-dev.safetensors" [family]`: a motion shot on a
        video model begins with this picture (image to video)."""
        example = 'start "assets/dawn.png"  or  start still "flux1-dev-fp8.safetensors"'
        r = d.render
        if not self.need(src, s, 1, example):
            return
        first = s.values[0]
        if first.kind == "string":
            self.extra(src, s.values[1:], example)
            path = self.file_value(src, first, "start picture", "image")
            if path:
                r.update(start_image=path, start_model=None, start_family=None)
            return
        if first.text != "still" or len(s.values) < 2 or s.values[1].kind != "string":
            self.error(src, first.span, "bad-value", "start takes a picture file in quotes, or still and an image model",
                       f"for example: {example}")
            return
        model = s.values[1]
        self.extra(src, s.values[3:], example)
        from storylang.families import DEFAULT, detect

        known = self.model_families()
        named = s.values[2] if len(s.values) > 2 else None
        if named is not None and named.text.lower() not in known:
            guess = did_you_mean(named.text.lower(), list(known))
            self.error(src, named.span, "unknown-family", f'"{named.raw}" is not a model family',
                       f'did you mean "{guess}"?' if guess else "families: " + ", ".join(sorted(known)))
            return
        family = known[named.text.lower()] if named is not None else (detect(model.text, known) or known[DEFAULT])
        if family.kind != "image":
            self.error(src, model.span, "family-kind", f"the start still is made with an image model, and "
                       f"{_clean(model.text)} is {family.title}, a video model",
                       'for example: start still "flux1-dev-fp8.safetensors"')
            return
        r.update(start_image=None, start_model=_clean(model.text), start_family=family.name)

    def _set_lipsync(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        """`lipsync "wan2.2_s2v_14B.safetensors"` (or `lipsync off`): a shot in which a character in
        frame speaks renders on this sound-to-video model, lips moving with the line."""
        example = 'lipsync "wan2.2_s2v_14B_fp8_scaled.safetensors"'
        if not self.need(src, s, 1, example):
            return
        v = s.values[0]
        self.extra(src, s.values[1:], example)
        if v.kind != "string":
            if v.text == "off":
                d.render["lipsync"] = None
            else:
                self.error(src, v.span, "bad-value", '"lipsync" takes a sound-to-video model in quotes, or off',
                           f"for example: {example}")
            return
        from storylang.families import DEFAULT, detect

        known = self.model_families()
        family = detect(v.text, known) or known[DEFAULT]
        if not (family.video and family.video.s2v):
            s2v = [f.title for f in known.values() if f.video and f.video.s2v]
            self.error(src, v.span, "family-kind", f"{_clean(v.text)} is {family.title}, which does not make video "
                       "from sound", "sound-to-video families: " + ", ".join(s2v))
            return
        d.render["lipsync"] = _clean(v.text)

    def _set_encoder(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        """`encoder "t5xxl.safetensors" ["clip_l.safetensors"]`: the text encoders, in the family's order."""
        v = self.quoted(src, s, 'encoder "umt5_xxl_fp16.safetensors"', '"encoder" takes file names in quotes',
                        options=2)
        if v is None:
            return
        names = [v.text]
        for extra in s.values[1:]:
            if extra.kind != "string":
                self.error(src, extra.span, "expected-text", '"encoder" takes file names in quotes')
                return
            names.append(extra.text)
        d.render["encoders"] = tuple(_clean(n) for n in names)

    def _set_word(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        key = s.key
        r = d.render
        example = {"sampler": "sampler dpmpp_2m", "scheduler": "scheduler karras", "template": "template hires"}[key]
        if (x := self.word(src, s, example)) is not None:
            r[key] = x

    def _set_number(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        field_name, lo, hi, integer, example = NUMBER_SETTINGS[s.key]
        if (x := self.one_number(src, s, lo, hi, integer, example)) is not None:
            d.render[field_name] = x

    def _set_seed(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.one_number(src, s, 0, 2**63 - 1, True, "seed 1234")) is not None:
            if shot is not None:
                d.seed_fixed = x
            else:
                d.seed_base = x

    def _set_narrator(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (v := self.voice(src, s, 'narrator "en-us" rate 160')) is not None:
            d.narrator = v

    def _set_expand(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        """`expand on`, `expand off`, `expand "instruction"` or `expand on "instruction"`."""
        example = 'expand on, expand off or expand "more dramatic lighting"'
        if not self.need(src, s, 1, example):
            return
        values = list(s.values)
        on, instruction = True, ""
        if values[0].kind in ("word", "name") and values[0].text.lower() in ("on", "off"):
            on = values.pop(0).text.lower() == "on"
        if values and values[0].kind == "string" and on:
            instruction = _clean(values.pop(0).text)
        elif values and values[0].kind != "string":
            self.error(src, values[0].span, "bad-value", f'expand is "on", "off" or an instruction in quotes, '
                       f'not "{values[0].raw}"', f"for example: {example}")
            return
        self.extra(src, values, example)
        d.expand = f.Expand(on=on, instruction=instruction)

    def _set_llm(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        """`llm "model"` or `llm "model" server "http://localhost:11434/v1"`."""
        example = 'llm "llama3.1:8b" server "http://localhost:11434/v1"'
        v = self.quoted(src, s, example, '"llm" needs the model\'s name in quotes', options=2)
        if v is None:
            return
        server = None
        rest = s.values[1:]
        if rest:
            if rest[0].text.lower() != "server" or len(rest) < 2 or rest[1].kind != "string":
                self.error(src, rest[0].span, "bad-value", f'unexpected "{rest[0].raw}" after the model',
                           f"for example: {example}")
                return
            server = rest[1].text.strip()
            if not server.startswith(("http://", "https://")):
                self.error(src, rest[1].span, "bad-value", f'"{server}" is not a server URL',
                           "write it as http://host:port/v1 (the server's OpenAI-compatible base URL)")
                return
        film["llm"] = f.Llm(model=v.text.strip(), server=server)

    def _set_duration(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if self.need(src, s, 1, "duration 4s"):
            self.extra(src, s.values[1:], "duration 4s")
            if (x := self.duration(src, s.values[0], "a shot's duration")) is not None:
                d.duration = x

    def _set_overrun(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.word(src, s, "overrun extend")) is not None:
            if x not in ("extend", "error"):
                self.error(src, s.values[0].span, "bad-value", f'overrun is "extend" or "error", not "{x}"',
                           "extend: a shot grows to fit its speech; error: the build stops")
            else:
                d.overrun = x

    def _set_lora(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.lora(src, s)) is not None:
            d.loras.append(x)

    def _set_upscale(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        r = d.render
        example = 'upscale "4x-UltraSharp.pth" 2x'
        if (x := self.model_file(src, s, example)) is not None:
            r["upscale_model"] = x
            for extra in s.values[1:2]:
                if extra.kind == "amount" and extra.text.endswith("x") and 1 <= float(extra.text[:-1]) <= 8:
                    r["upscale_factor"] = float(extra.text[:-1])
                else:
                    self.error(src, extra.span, "bad-value", f'upscale factor is written 1.5x … 8x, not "{extra.raw}"')

    def _set_motion(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        r = d.render
        if (x := self.text(src, s, 'motion "mm_sd_v15_v2.ckpt"')) is not None:
            r["motion_model"] = x

    def _set_controlnet(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
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

    def _set_camera(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        moves = self.camera(src, s)
        if moves is not None:
            if shot is not None:
                shot.setdefault("camera", []).extend(moves)
            else:
                d.camera = tuple(moves)

    def _set_music(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        self.music(src, s, scene if scene is not None else film)

    def _set_action(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.text(src, s, 'action "the beam sweeps across the waves"')) is not None:
            shot["action"] = (shot.get("action", "") + " " + x).strip()

    def _set_narrate(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        if (x := self.text(src, s, 'narrate "Every night, Mara climbed the stairs."')) is not None:
            if x:
                shot.setdefault("lines", []).append(("narration", None, None, x, s.span))
            else:
                self.error(src, s.values[0].span, "empty-line", "narration is empty")

    def _set_at(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        example = 'at 2s "the door opens"'
        if self.need(src, s, 2, example):
            frame = self.duration(src, s.values[0], '"at"', allow_zero=True)
            v = s.values[1]
            if v.kind != "string":
                self.error(src, v.span, "expected-text", "what happens at that time goes in quotes", example)
            elif frame is not None:
                shot.setdefault("schedule", []).append((frame, _clean(v.text), s.span))
            self.extra(src, s.values[2:], example)

    def _set_keyframes(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
        example = 'keyframes "start.png" to "end.png"'
        vals = [v for v in s.values if not (v.kind == "word" and v.text == "to")]
        if len(vals) != 2:
            self.error(src, s.span, "keyframes", "keyframes needs a start image and an end image", example)
        else:
            a = self.file_value(src, vals[0], "keyframe image", "image")
            b = self.file_value(src, vals[1], "keyframe image", "image")
            if a and b:
                shot["keyframes"] = f.Keyframes(start=a, end=b)

    def _set_source(self, src: ScriptFile, s: t.Setting, d: _Defaults, film, shot, scene) -> None:
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


# render settings that are one number: (field, lowest, highest, whole, example)
NUMBER_SETTINGS = {
    "steps": ("steps", 1, 10000, True, "steps 28"),
    "cfg": ("cfg", 0, 100, False, "cfg 5.5"),
    "denoise": ("denoise", 0, 1, False, "denoise 0.6"),
    "clip skip": ("clip_skip", 1, 24, True, "clip skip 2"),
}

# one setter per setting; `note` and `format` (read before everything else) set nothing here
SETTERS = {
    "title": Settings._set_card,
    "end": Settings._set_card,
    "author": Settings._set_author,
    "style": Settings._set_text,
    "negative": Settings._set_text,
    "setting": Settings._set_text,
    "lighting": Settings._set_text,
    "mood": Settings._set_text,
    "model": Settings._set_model,
    "vae": Settings._set_model,
    "encoder": Settings._set_encoder,
    "start": Settings._set_start,
    "lipsync": Settings._set_lipsync,
    "sampler": Settings._set_word,
    "scheduler": Settings._set_word,
    "template": Settings._set_word,
    "steps": Settings._set_number,
    "cfg": Settings._set_number,
    "denoise": Settings._set_number,
    "clip skip": Settings._set_number,
    "seed": Settings._set_seed,
    "narrator": Settings._set_narrator,
    "duration": Settings._set_duration,
    "expand": Settings._set_expand,
    "llm": Settings._set_llm,
    "overrun": Settings._set_overrun,
    "lora": Settings._set_lora,
    "upscale": Settings._set_upscale,
    "motion": Settings._set_motion,
    "controlnet": Settings._set_controlnet,
    "camera": Settings._set_camera,
    "music": Settings._set_music,
    "action": Settings._set_action,
    "narrate": Settings._set_narrate,
    "at": Settings._set_at,
    "keyframes": Settings._set_keyframes,
    "source": Settings._set_source,
}
