"""Why a build redoes what it redoes, in the writer's terms (like ninja's `-d explain`).

Every build leaves `build/<film>/explain.json`: for each shot the facts a writer can change
(framing, action, camera, length, transition, cast and their looks, lines, each render setting
and LoRA, the graph template's files and the expanded prompt by digest, files by digest) with
the line it was written on, and for each spoken line its text and voice. The next plan
compares the facts of every shot or line whose artifact is missing from the cache with that
record, and names what changed:

    shot 7 card: framing changed (harbour.story:88)
    line 3:0 speech: voice rate of MARA changed (harbour.story:91)
    segment 7-8: transition changed (harbour.story:93)
    shot 3 render: LoRA mara_v2.safetensors changed (harbour.story:40)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from storylang import atomic
from storylang.cache import digest, file_digest
from storylang.film import Film, Shot, line_key
from storylang.timing import Timing

VERSION = 2

# A shot's render settings, each its own fact (a reason names the one that changed).
RENDER_SETTINGS = {"model": "model", "vae": "VAE", "sampler": "sampler", "scheduler": "scheduler", "steps": "steps",
                   "cfg": "cfg", "clip_skip": "clip skip", "denoise": "denoise", "seed": "seed",
                   "template": "template", "style": "style", "negative": "negative prompt",
                   "upscale_model": "upscale model", "upscale_factor": "upscale factor",
                   "motion_model": "motion model", "controlnet": "controlnet", "controlnet_kind": "controlnet kind"}


def _digest(root: Path, rel: str) -> str:
    try:
        return file_digest(root / rel)[:16]
    except OSError:
        return "missing"


def _camera(shot: Shot) -> str:
    return "; ".join(" ".join(str(v) for v in m.model_dump().values() if v not in (None, "", 0)) for m in shot.camera)


def _render_facts(shot: Shot) -> dict[str, str]:
    settings = shot.render.model_dump()
    facts = {name: "" if settings[field] is None else str(settings[field]) for field, name in RENDER_SETTINGS.items()}
    for lora in shot.render.loras:
        facts[f"LoRA {lora.file}"] = f"{lora.model} {lora.clip}"
    return facts


def template_digest(root: Path, name: str) -> str:
    """The digest of the graph template a name resolves to (the project's `templates/` first, then
    the built-in ones) and of the macro files it can import, as a render would read them."""
    from storylang.resources import templates_dir

    folders = [root / "templates" / "graphs", templates_dir() / "graphs"]
    found = next((f / n for n in (f"{name}.json.j2", f"{name}.json") for f in folders if (f / n).is_file()), None)
    if found is None:
        return "missing"
    macros = {}
    for folder in reversed(folders):  # the project's macros shadow the built-in ones
        if folder.is_dir():
            macros.update({p.name: p for p in folder.glob("_*.j2")})
    return "".join(file_digest(p)[:8] for p in [found, *(macros[k] for k in sorted(macros))])


def shot_facts(film: Film, shot: Shot, timing: Timing | None, root: Path, prompt: str | None = None,
               templates: dict[str, str] | None = None) -> dict[str, str]:
    """What the writer wrote (or included) that makes this shot look and sound as it does;
    `prompt` is the expanded prompt the LLM stage hands the render, if any."""
    scene = film.scenes[shot.scene]
    facts = {
        "scene heading": scene.heading, "framing": shot.framing, "angle": shot.angle or "",
        "cast": ", ".join(shot.cast), "action": shot.action, "setting": shot.setting, "lighting": shot.lighting,
        "mood": shot.mood, "camera": _camera(shot),
        "length": str(timing.shots[shot.id].frames if timing else shot.frames),
        "transition": json.dumps(shot.transition.model_dump() if shot.transition else None, sort_keys=True),
        "cues": json.dumps([c.model_dump() for c in shot.schedule], sort_keys=True),
        "lines": json.dumps([[ln.speaker, ln.text] for ln in shot.lines]),
        "format": f"{film.width}x{film.height} @ {film.fps_num}/{film.fps_den}",
        **_render_facts(shot),
    }
    templates = {} if templates is None else templates
    name = shot.render.template
    if name not in templates:
        templates[name] = template_digest(root, name)
    facts["template file"] = templates[name]
    if prompt is not None:
        facts["expanded prompt"] = prompt
    for name in shot.cast:
        c = film.character(name)
        facts[f"look of {name}"] = c.look
        if c.reference:
            facts[f"reference image of {name}"] = _digest(root, c.reference.file)
        elif c.sheet is not None:  # a render it reads: what the sheet is made from
            facts[f"sheet of {name}"] = digest({"view": c.sheet, "look": c.look, "seed": c.seed,
                                                "loras": [lo.model_dump() for lo in c.loras]})
    if shot.continues and shot in film.shots and film.shots.index(shot) > 0:
        # its first frame is the last of the shot before: whatever makes that one makes this one
        before = film.shots[film.shots.index(shot) - 1]
        facts[f"first frame (shot {before.id}'s last)"] = digest(shot_facts(film, before, timing, root, None,
                                                                            templates))
    if shot.keyframes:
        facts["keyframes"] = _digest(root, shot.keyframes.start) + " " + _digest(root, shot.keyframes.end)
    if shot.source:
        facts["source clip"] = _digest(root, shot.source.file) + f" from {shot.source.start}"
    return facts


def line_facts(line) -> dict[str, str]:
    v = line.voice
    return {"text": line.text, "voice": v.id, "voice rate": str(v.rate), "voice pitch": str(v.pitch),
            "speaker": line.speaker or "narrator"}


@dataclass
class Record:
    shots: dict[str, dict] = field(default_factory=dict)  # id → {"where": "file:line", "facts": {...}}
    lines: dict[str, dict] = field(default_factory=dict)  # "shot:index" → {"where", "facts"}
    frames: int = 0  # the film's length

    @classmethod
    def of(cls, film: Film, timing: Timing | None, root: Path, prompts: dict | None = None) -> "Record":
        """`prompts`: the expansion's prompts per shot id (expand.Expanded), where the LLM wrote them."""
        rec = cls(frames=timing.frames if timing else 0)
        templates: dict[str, str] = {}
        for shot in film.shots:
            e = (prompts or {}).get(shot.id)
            prompt = None if e is None else \
                hashlib.sha256(f"{e.positive}\0{e.negative}\0{e.camera}".encode()).hexdigest()[:16]
            rec.shots[shot.id] = {"where": f"{shot.where.file}:{shot.where.line}",
                                  "facts": shot_facts(film, shot, timing, root, prompt, templates)}
            for i, line in enumerate(shot.lines):
                rec.lines[line_key(shot, i)] = {"where": f"{line.where.file}:{line.where.line}",
                                                "facts": line_facts(line)}
        return rec

    @classmethod
    def load(cls, path: Path) -> "Record | None":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if data.get("version") != VERSION:
            return None
        return cls(shots=data.get("shots", {}), lines=data.get("lines", {}), frames=data.get("frames", 0))

    def save(self, path: Path) -> None:
        # in film order (not sorted: shot "10" is not before shot "2"), which is as deterministic
        atomic.write_text(path, json.dumps({"version": VERSION, "shots": self.shots, "lines": self.lines,
                                            "frames": self.frames}, indent=1, ensure_ascii=False) + "\n")


def _changed(old: dict | None, new: dict, only: tuple[str, ...] | None = None) -> str:
    """"new", or which of the facts (those named by `only`, or all) differ from the last build's."""
    if old is None:
        return "new"

    def shown(name: str) -> bool:
        return only is None or any(name == o or name.startswith(o + " ") for o in only)

    before, after = old.get("facts", {}), new.get("facts", {})
    names = [k for k in {**before, **after} if shown(k) and before.get(k) != after.get(k)]
    if not names:
        return "inputs changed (storyc, a template or a file)"
    return ", ".join(names) + " changed"


# Which facts each artifact shows: a reason names only those.
CARD_FACTS = ("scene heading", "framing", "cast", "format")
WORD_FACTS = ("scene heading", "framing", "angle", "cast", "action", "setting", "lighting", "mood", "camera",
              "cues", "lines", "length", "format")
SEGMENT_FACTS = WORD_FACTS + ("transition", "keyframes", "source clip")
RENDER_FACTS = ("scene heading", "framing", "angle", "cast", "action", "setting", "lighting", "mood", "camera",
                "cues", "length", *RENDER_SETTINGS.values(), "LoRA", "template file", "expanded prompt", "look of",
                "reference image of", "sheet of", "first frame", "keyframes", "source clip", "format")


def reasons(old: Record | None, new: Record, todo: dict) -> list[str]:
    """One line per artifact to redo: what, why, where. `todo` holds shot ids per kind ("card",
    "words", "render"), line keys ("speech"), and segments as lists of shot ids ("segment")."""
    out = []

    def shot_reason(kind: str, sid: str, facts) -> str:
        entry = new.shots[sid]
        why = _changed(old.shots.get(sid) if old else None, entry, facts)
        return f"shot {sid} {kind}: {why} ({entry['where']})"

    for sid in todo.get("render", []):
        out.append(shot_reason("render", sid, RENDER_FACTS))
    for sid in todo.get("card", []):
        out.append(shot_reason("card", sid, CARD_FACTS))
    for sid in todo.get("words", []):
        out.append(shot_reason("words", sid, WORD_FACTS))
    for key in todo.get("speech", []):
        entry = new.lines[key]
        why = _changed(old.lines.get(key) if old else None, entry)
        if why.startswith("voice"):  # whose voice: "voice rate of MARA changed"
            why = why.removesuffix(" changed") + f" of {entry['facts'].get('speaker', 'narrator')} changed"
        out.append(f"line {key} speech: {why} ({entry['where']})")
    for shots in todo.get("segment", []):
        shots = [s for s in shots if s in new.shots]
        if not shots:
            continue
        name = "-".join(shots)
        # the reason of the side that changed, at that shot's line
        whys = [(_changed(old.shots.get(s) if old else None, new.shots[s], SEGMENT_FACTS), s) for s in shots]
        why, sid = next((w for w in whys if not w[0].startswith("inputs")), whys[0])
        out.append(f"segment {name}: {why} ({new.shots[sid]['where']})")
    if todo.get("sound"):
        why = todo["sound"]
        if old is None:
            why = "new"  # no build of this film to compare with
        elif old.frames != new.frames:
            why = f"the film's length changed ({old.frames} → {new.frames} frames)"
        out.append(f"sound: {why}")
    return out
