"""Resolved shots → ComfyUI API graphs, from Jinja2 templates, validated before any GPU second.

Templates run in Jinja's sandbox and every `{{ expression }}` is written as JSON (a string
gets quotes and escapes), so a writer's text can never break the graph or run template
code. A project's `templates/` folder (next to the script) shadows the built-in templates.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from storylang.cache import digest, file_digest
from storylang.families import DEFAULT, Family, families
from storylang.comfy.prompts import Prompt, PromptPart, assemble_prompt, expanded_prompt
from storylang.comfy.schema import GraphProblem, ObjectInfo, validate
from storylang.diagnostics import Diagnostic, did_you_mean
from storylang.film import Film, Scene, Shot
from storylang.resources import template_loader, templates_dir
from storylang.timing import Timing


# AnimateDiff v2 motion LoRAs, by camera move.
MOTION_LORAS = {
    ("push", "in"): "v2_lora_ZoomIn.ckpt", ("zoom", "in"): "v2_lora_ZoomIn.ckpt",
    ("pull", "out"): "v2_lora_ZoomOut.ckpt", ("zoom", "out"): "v2_lora_ZoomOut.ckpt",
    ("pan", "left"): "v2_lora_PanLeft.ckpt", ("truck", "left"): "v2_lora_PanLeft.ckpt",
    ("pan", "right"): "v2_lora_PanRight.ckpt", ("truck", "right"): "v2_lora_PanRight.ckpt",
    ("tilt", "up"): "v2_lora_TiltUp.ckpt", ("pedestal", "up"): "v2_lora_TiltUp.ckpt", ("crane", "up"): "v2_lora_TiltUp.ckpt",
    ("tilt", "down"): "v2_lora_TiltDown.ckpt", ("pedestal", "down"): "v2_lora_TiltDown.ckpt",
    ("crane", "down"): "v2_lora_TiltDown.ckpt",
    ("roll", "right"): "v2_lora_RollingClockwise.ckpt", ("roll", "left"): "v2_lora_RollingAnticlockwise.ckpt",
}
CLOSEST_MOTION = {("orbit", "left"): ("pan", "left"), ("orbit", "right"): ("pan", "right"), ("shake", None): ("static", None)}
MOTION_STRENGTH = {"slow": 0.6, "medium": 0.8, "fast": 1.0}


@dataclass(frozen=True)
class GraphInput:
    """A file the graph reads, uploaded to the server under `name` before the graph runs."""

    name: str
    file: str  # relative to the film root
    kind: str  # "image" or "video"
    purpose: str
    # A video is trimmed before it is uploaded: `frames` frames from frame `start`, both at the film's rate
    # (the rate is part of `name`'s digest); None uploads the file as it is.
    start: int = 0
    frames: int | None = None
    # the output of another render (a still made first), not a file of the film: that render's shot id
    made_by: str | None = None
    # the shot's dialogue as one WAV (`frames` long at the film's rate): (line key, offset in frames)
    # of each line, mixed from the speech stage's files when it is uploaded
    dialogue: tuple[tuple[str, int], ...] = ()
    last_frame: bool = False  # of `made_by`'s render: its last frame (a shot that continues it)


@dataclass
class ShotGraph:
    shot: Shot
    template: str
    graph: dict | None
    prompt: Prompt
    inputs: list[GraphInput] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    template_file: str = ""
    root: str = ""  # the film's folder (its project families)
    # renders this one reads, made first: its start still, the sheets of its cast
    upstream: list["ShotGraph"] = field(default_factory=list)


def _finalize(value):
    # Template pieces (macro output) are Markup and pass through; every value is written as JSON.
    if isinstance(value, _Silent):
        return Markup("")
    if isinstance(value, Markup):
        return value
    if isinstance(value, Fraction):
        value = float(value)
    return Markup(json.dumps(value, ensure_ascii=False))


class _Silent:
    pass


def template_env(project_templates: Path | None) -> SandboxedEnvironment:
    """A sandboxed environment whose expressions print as JSON; project templates shadow built-ins."""
    search = []
    if project_templates is not None and project_templates.is_dir():
        search.append(str(project_templates))
    search.append(str(templates_dir()))
    return SandboxedEnvironment(
        loader=template_loader(search),
        finalize=_finalize,
        autoescape=True,  # with finalize: only JSON reaches the output, never raw text
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.do"],
        keep_trailing_newline=True,
    )


def template_names(env: SandboxedEnvironment) -> list[str]:
    names = set()
    for n in env.list_templates():
        if n.startswith("graphs/") and n.endswith((".json.j2", ".json")) and not n.split("/")[-1].startswith("_"):
            names.add(n.split("/")[-1].removesuffix(".j2").removesuffix(".json"))
    return sorted(names - {MUSIC_TEMPLATE})


def find_template(env: SandboxedEnvironment, name: str) -> str | None:
    for candidate in (f"graphs/{name}.json.j2", f"graphs/{name}.json"):
        try:
            env.loader.get_source(env, candidate)
            return candidate
        except jinja2.TemplateNotFound:
            continue
    return None


def upload_name(root: Path, rel: str) -> str:
    """The name a file is uploaded under: its digest, never the writer's file name."""
    suffix = Path(rel).suffix.lower()
    return f"storylang/{file_digest(root / rel)[:20]}{suffix}"


def trimmed_name(root: Path, rel: str, start: int, frames: int, fps: Fraction) -> str:
    """The upload name of a trimmed clip: the digest of the source file and of the trim."""
    key = digest({"file": file_digest(root / rel), "start": start, "frames": frames, "fps": [fps.numerator,
                                                                                            fps.denominator]})
    return f"storylang/{key[:20]}.mp4"


def _diag(shot: Shot, severity: str, code: str, message: str, hint: str | None = None) -> Diagnostic:
    w = shot.where
    return Diagnostic(severity=severity, code=code, message=message, file=w.file,
                      span=w.span(4), hint=hint)


REFERENCE_NODES = {"": "IPAdapterAdvanced", "latent": "ReferenceLatent", "edit": "TextEncodeQwenImageEditPlus"}
REFERENCE_LIMIT = {"edit": 3}  # TextEncodeQwenImageEditPlus takes image1..image3


def _references(film: Film, shot: Shot, root: Path, info: ObjectInfo, inputs: list, warnings: list,
                made: dict, family) -> list[dict]:
    """The cast's reference images, a writer's own or a sheet rendered first (added to `inputs`), or
    none when the server lacks the family's reference node (IP-Adapter, ReferenceLatent, Qwen's edit
    encoder)."""
    references, reads = [], []
    for name in shot.cast:
        ref = film.character(name).reference
        if ref:
            up = upload_name(root, ref.file)
            reads.append(GraphInput(up, ref.file, "image", f"reference image of {name}"))
            references.append({"character": name, "image": up, "weight": ref.weight})
        elif f"sheet:{name}" in made:
            reads.append(made[f"sheet:{name}"])
            references.append({"character": name, "image": made[f"sheet:{name}"].name, "weight": SHEET_WEIGHT})
    node = REFERENCE_NODES[family.graph.reference]
    if references and node not in info.nodes:
        warnings.append(f"{node} is not on {info.origin}: the reference image of "
                        f"{references[0]['character']} is not used")
        return []  # nothing uploaded, no sheet made, for a reference the graph cannot use
    limit = REFERENCE_LIMIT.get(family.graph.reference)
    if limit and len(references) > limit:
        warnings.append(f"{family.title} takes {limit} reference images: "
                        + ", ".join(r["character"] for r in references[limit:]) + " not used")
        references, reads = references[:limit], reads[:limit]
    inputs.extend(reads)
    return references


SHEET_WEIGHT = 0.8  # a sheet as IP-Adapter reference, as a writer's `reference` defaults to


def _motion_loras(shot: Shot, warnings: list) -> list[dict]:
    """AnimateDiff motion LoRAs for the shot's camera moves; a move they cannot make gets the closest."""
    loras = []
    for m in shot.camera:
        key = (m.move, m.direction)
        if key in CLOSEST_MOTION:
            near = CLOSEST_MOTION[key]
            warnings.append(f"the motion template (AnimateDiff motion LoRAs) cannot {m.move}"
                            f"{' ' + m.direction if m.direction else ''}; closest: "
                            f"{' '.join(x for x in near if x)}, used instead")
            key = near
        if key in MOTION_LORAS:
            loras.append({"name": MOTION_LORAS[key], "strength": MOTION_STRENGTH.get(m.speed, 0.8)})
    return loras


def _travel(positive: str, schedule: list[dict]) -> str:
    """Prompt travel in AnimateDiff's schedule format: "frame": "prompt" (its parser takes no escapes)."""
    def plain(text: str) -> str:
        return text.replace("\\", "/").replace('"', "'").replace("\n", " ")

    travel = [f'"0": "{plain(positive)}"']
    for cue in schedule:
        if cue["generated_frame"] > 0:
            travel.append(f'"{cue["generated_frame"]}": "{plain(positive + ", " + cue["text"])}"')
    return ",\n".join(travel)


def _pictures(film: Film, shot: Shot, root: Path, frames: int, made: dict, lines,
              inputs: list[GraphInput]) -> dict:
    """The pictures, clips and sound a shot's graph reads (added to `inputs`), by the names the
    templates use: keyframes, start, lipsync, source (None where the shot has none)."""
    r = shot.render
    keyframes = None
    if shot.keyframes:
        a, b = upload_name(root, shot.keyframes.start), upload_name(root, shot.keyframes.end)
        inputs += [GraphInput(a, shot.keyframes.start, "image", "start keyframe"),
                   GraphInput(b, shot.keyframes.end, "image", "end keyframe")]
        keyframes = {"start": a, "end": b}
    start = None
    if r.start_image:
        up = upload_name(root, r.start_image)
        inputs.append(GraphInput(up, r.start_image, "image", "start picture (the video's first frame)"))
        start = {"image": up}
    elif "continue" in made or "still" in made:  # the shot before's last frame, else a still made first
        first = made.get("continue") or made["still"]
        inputs.append(first)
        start = {"image": first.name}
    lipsync = _lipsync(film, shot, root, r, frames, lines, start, inputs, made) if r.template == "lipsync" else None
    source = None
    if shot.source:
        up = trimmed_name(root, shot.source.file, shot.source.start, frames, film.fps)
        inputs.append(GraphInput(up, shot.source.file, "video",
                                 f"source clip, {frames} frames from frame {shot.source.start} at the film's rate",
                                 start=shot.source.start, frames=frames))
        source = {"video": up, "frames": frames}
    return {"keyframes": keyframes, "start": start, "lipsync": lipsync, "source": source}


def _shot_values(shot: Shot, family: Family, frames: int, seconds: Fraction) -> dict:
    """The shot as templates see it: its words, camera and render settings, with its family's encoders."""
    r = shot.render
    return {"id": shot.id, "number": shot.number, "frames": frames, "seconds": float(seconds),
            "framing": shot.framing, "angle": shot.angle, "cast": list(shot.cast), "action": shot.action,
            "camera": [m.model_dump() for m in shot.camera], "model": r.model, "vae": r.vae,
            "sampler": r.sampler, "scheduler": r.scheduler, "steps": r.steps, "cfg": r.cfg,
            "clip_skip": r.clip_skip, "denoise": r.denoise, "seed": r.seed,
            "loras": [lo.model_dump() for lo in r.loras], "upscale_model": r.upscale_model,
            "upscale_factor": r.upscale_factor, "motion_model": r.motion_model, "controlnet": r.controlnet,
            "controlnet_kind": r.controlnet_kind, "template": r.template, "family": family.name,
            "encoders": list(r.encoders or family.load.text_encoders),
            "second_model": family.second_model(r.model) if r.model else None}


def shot_context(film: Film, shot: Shot, root: Path, info: ObjectInfo, frames: int | None = None,
                 expanded=None, made: dict | None = None,
                 lines: tuple[tuple[int, int], ...] | None = None) -> tuple[dict, list[GraphInput], list[str], Prompt]:
    """Everything a template may use for one shot, plus the inputs it reads and warnings.

    `frames` is the shot's final length from the timing decision (lengthened for its speech);
    without it, the script's length. `expanded`: the shot's LLM-written prompt (expand/), if any.
    `made`: inputs that are renders made first ("still": the one the shot's video starts from,
    "sheet:NAME": a character's sheet). `lines`:
    (offset, length) of each of the shot's lines in frames, from the timing decision.
    """
    frames = frames or shot.frames
    made = made or {}
    warnings: list[str] = []
    inputs: list[GraphInput] = []
    r = shot.render
    fps = film.fps
    nodes = frozenset(info.nodes)
    known = families(root)
    family = known.get(r.family) or known[DEFAULT]  # an unknown one is reported by compile_shot
    # a video family is told the camera move in words; AnimateDiff gets it as motion LoRAs
    video_motion = r.template == "motion" and family.kind == "video"
    animatediff = "ADE_LoadAnimateDiffModel" in nodes and family.kind == "image"
    prompt = (expanded_prompt(expanded, with_camera_words=video_motion) if expanded is not None
              else assemble_prompt(film, shot, with_camera_words=video_motion))
    takes = family.graph.ipadapter or family.graph.reference
    references = _references(film, shot, root, info, inputs, warnings, made, family) if takes else []
    if not takes and r.template != "lipsync" and any(
            film.character(n).reference or f"sheet:{n}" in made for n in shot.cast):
        warnings.append(f"{family.title} has no IP-Adapter or reference input: the cast's reference images "
                        "are not used")
    pictures = _pictures(film, shot, root, frames, made, lines, inputs)
    # motion: AnimateDiff renders at a lower rate and RIFE interpolates up to the film's rate
    multiplier = 3 if fps >= 20 else 2 if fps >= 12 else 1
    if "RIFE VFI" not in nodes:
        multiplier = 1
    # RIFE makes (n-1)*m+1 frames of n: the least n that reaches the shot, then the graph keeps exactly `frames`
    gen_frames = math.ceil((frames - 1) / multiplier) + 1 if multiplier > 1 else frames
    motion_loras = _motion_loras(shot, warnings) if r.template == "motion" and family.kind == "image" else []
    seconds = Fraction(frames) / fps
    width, height = family.size(film.width, film.height)
    schedule = []
    for cue in shot.schedule:
        schedule.append({"frame": cue.frame, "generated_frame": cue.frame // multiplier, "text": cue.text,
                         "at": float(Fraction(cue.frame) / fps)})
    travel = _travel(prompt.positive, schedule)
    base = max(r.upscale_factor, 1.0)
    step = family.graph.multiple
    video = ({"fps": family.video.fps, "length": family.frames(seconds), "latent": family.video.latent,
              "i2v": family.video.i2v, "s2v": family.video.s2v} if family.video else None)
    ctx = {
        "film": {"title": film.title, "width": film.width, "height": film.height, "fps": float(fps),
                 "fps_num": film.fps_num, "fps_den": film.fps_den},
        "shot": _shot_values(shot, family, frames, seconds),
        "family": family.model_dump(exclude={"file"}),
        "size": {"width": width, "height": height},
        "video": video,
        "prompt": {"positive": prompt.positive, "negative": prompt.negative, "schedule": schedule,
                   "travel": travel},
        "references": references,
        **pictures,
        "motion": {"animatediff": animatediff, "multiplier": multiplier, "frames": gen_frames,
                   "fps": float(fps / multiplier), "loras": motion_loras},
        "hires": {"base_width": max(int(film.width / base) // step, 1) * step,
                  "base_height": max(int(film.height / base) // step, 1) * step},
        "output_prefix": f"storylang/shot_{shot.id.replace('~', 'x')}",
        "nodes": nodes,
    }
    return ctx, inputs, warnings, prompt


def _lipsync(film: Film, shot: Shot, root: Path, r, frames: int, lines, start: dict | None,
             inputs: list[GraphInput], made: dict) -> dict | None:
    """The lipsync template's sound and picture: the shot's dialogue as one WAV (named by what is
    said, by whom and when) and the speaker's picture (the start picture or still, else the
    reference image of the first character in frame who speaks). None when either is missing."""
    from storylang.film import line_key

    if lines is None or len(lines) != len(shot.lines):
        return None
    said = tuple((line_key(shot, i), offset) for i, (offset, _) in enumerate(lines))
    name = digest({"lines": [[ln.text, ln.voice.id, ln.voice.rate, ln.voice.pitch, offset]
                             for ln, (offset, _) in zip(shot.lines, lines)],
                   "frames": frames, "fps": [film.fps_num, film.fps_den]})
    audio = GraphInput(f"storylang/lines_{name[:20]}.wav", "", "audio", "the shot's dialogue, as timed in the film",
                       frames=frames, dialogue=said)
    image = start["image"] if start else None
    speakers = [film.character(ln.speaker) for ln in shot.lines if ln.speaker in shot.cast]
    if image is None:
        speaker = next((c for c in speakers if c.reference), None)
        sheet = next((made[f"sheet:{c.name}"] for c in speakers if f"sheet:{c.name}" in made), None)
        if speaker is not None:
            image = upload_name(root, speaker.reference.file)
            inputs.append(GraphInput(image, speaker.reference.file, "image", f"reference image of {speaker.name}, who speaks"))
        elif sheet is not None:
            image = sheet.name
            inputs.append(sheet)
        else:
            return None
    inputs.append(audio)
    return {"audio": audio.name, "image": image}


def still_shot(shot: Shot, root: Path) -> Shot:
    """The still a shot's video starts from (`start still "model"`), as a shot of its own: the
    image model with its family's defaults, the shot's words, seed and framing, no camera move."""
    r = shot.render
    render = _picture_render(r, r.start_model, families(root)[r.start_family or DEFAULT], "still")
    return shot.model_copy(update={"id": still_id(shot.id), "render": render, "camera": (), "continues": False})


def _picture_render(r, model: str, family: Family, template: str, **more):
    """Render settings for a picture another render reads (a start still, a sheet): `model` on its
    image family with that family's defaults, none of the shot's video settings, encoders or VAE."""
    defaults = family.defaults.model_dump()
    return r.model_copy(update={**defaults, "template": template, "model": model, "family": family.name,
                                "encoders": (), "vae": None, "loras": (), "start_model": None, "start_family": None,
                                "start_image": None, "lipsync": None, "from_family": tuple(sorted(defaults)), **more})


def still_id(shot_id: str) -> str:
    """The id of the still a shot's video starts from (its render, its graph file)."""
    return f"{shot_id}.still"


def sheet_shot(film: Film, name: str, root: Path) -> Shot | None:
    """A character's sheet (`sheet` under the character) as a shot of its own, rendered first: the
    sheet's words and the character's look on the image model of the first shot the character is
    in (its start still's model, for a video model), with the film's style, the character's seed and
    LoRAs. None when the character is in no shot or no image model is in reach."""
    character = film.character(name)
    first = next((s for s in film.shots if name in s.cast and s.render.model), None)
    if first is None:
        return None
    r = first.render
    known = families(root)
    model, family_name = r.model, r.family
    if known.get(family_name, known[DEFAULT]).kind != "image":
        if not r.start_model:
            return None
        model, family_name = r.start_model, r.start_family or DEFAULT
    render = _picture_render(r, model, known[family_name], "sheet", loras=character.loras, seed=character.seed)
    return first.model_copy(update={
        "id": f"sheet.{name}", "number": None, "name": f"{name}'s sheet", "cast": (name,), "framing": "full",
        "angle": None, "camera": (), "action": character.sheet or "", "setting": "", "lighting": "", "mood": "",
        "lines": (), "schedule": (), "keyframes": None, "source": None, "render": render, "where": character.where,
        "continues": False})


def _made_input(sg: ShotGraph, kind: str, purpose: str, last_frame: bool = False) -> GraphInput:
    """The input of a render made first, named by its graph's digest: known before anything runs."""
    return GraphInput(f"storylang/{kind}_{digest({'graph': sg.graph})[:20]}.png", "", "image", purpose,
                      made_by=sg.shot.id, last_frame=last_frame)


def compile_sheets(film: Film, root: Path, info: ObjectInfo) -> dict[str, ShotGraph]:
    """The film's character sheets alone, by character name (storyc sheets)."""
    return _sheets(film, root, template_env(root / "templates"), info)


def _sheets(film: Film, root: Path, env, info: ObjectInfo) -> dict[str, ShotGraph]:
    """Each character's sheet graph, compiled once for the film (a writer's own reference wins)."""
    out = {}
    for c in film.characters:
        if c.sheet is not None and c.reference is None and (shot := sheet_shot(film, c.name, root)) is not None:
            out[c.name] = compile_shot(film, shot, root, env, info)
    return out


MUSIC_TEMPLATE = "music"  # a scene's generated music: not a shot's template


def music_id(scene: Scene) -> str:
    return f"music.{scene.index + 1}"


def music_family(model: str) -> str:
    """ACE-Step 1.5 or v1, by the model file's name (their nodes and settings differ)."""
    return "ace-step-1.5" if re.search(r"1[._]5", model) else "ace-step"


def compile_music(film: Film, root: Path, info: ObjectInfo) -> dict[int, ShotGraph]:
    """The graph of each scene's `music generate` cue, by scene index."""
    env = template_env(root / "templates")
    out = {}
    for scene in film.scenes:
        cue = scene.music
        if cue is None or cue.generate is None:
            continue
        out[scene.index] = _compile_music(film, scene, env, info)
    return out


def _compile_music(film: Film, scene: Scene, env, info: ObjectInfo) -> ShotGraph:
    cue, g = scene.music, scene.music.generate
    first = next((s for s in film.shots if s.scene == scene.index), film.shots[0])
    where = cue.where or scene.where
    shot = first.model_copy(update={
        "id": music_id(scene), "number": None, "name": f"the music of scene {scene.index + 1}", "cast": (),
        "camera": (), "action": g.text, "lines": (), "schedule": (), "keyframes": None, "source": None,
        "render": first.render.model_copy(update={"seed": g.seed, "loras": ()}), "where": where, "continues": False})
    prompt = Prompt(positive=g.text, negative="", positive_parts=(PromptPart("music", g.text),), negative_parts=())
    result = ShotGraph(shot=shot, template=MUSIC_TEMPLATE, graph=None, prompt=prompt,
                       template_file=find_template(env, MUSIC_TEMPLATE) or "")
    label = f"the music of scene {scene.index + 1}"
    values = {"model": g.model, "family": music_family(g.model), "tags": g.text, "lyrics": g.lyrics or "[instrumental]",
              "seconds": round(g.frames / film.fps, 3), "seed": g.seed, "bpm": 120, "keyscale": "C major"}
    try:
        text = env.get_template(result.template_file).render(music=values, output_prefix=f"storylang/{shot.id}",
                                                             film=film)
        result.graph = json.loads(text)
    except (jinja2.TemplateError, json.JSONDecodeError) as e:
        result.diagnostics.append(_diag(shot, "error", "template-error", f"{label}: {result.template_file}: {e}"))
        return result
    for p in validate(result.graph, info):
        hint = p.hint
        if p.code == "missing_node_type" and values["family"] == "ace-step-1.5":
            hint = 'ACE-Step 1.5 needs ComfyUI 0.33 or later; on an older server: using "ace_step_v1_3.5b.safetensors"'
        result.diagnostics.append(_diag(shot, "error", f"graph-{p.code}", f"{label}: {p.text()}", hint))
    return result


IMAGE_ONLY = ("still", "hires", "restyle", "sheet")  # the built-in templates that make pictures from pictures or noise


def _unfit(film: Film, shot: Shot, template: str, known: dict[str, Family]) -> tuple[str, str, str] | None:
    """Why a shot cannot compile with a built-in template on its model family: (code, message, hint), else None."""
    r = shot.render
    family = known.get(r.family)
    if family is None:
        return ("unknown-family", f': there is no model family "{r.family}"',
                "families: " + ", ".join(sorted(known)))
    if template not in ("still", "hires", "motion", "keyframes", "restyle", "lipsync", "sheet"):
        return None  # a project's own template decides for itself
    if not r.model:
        return "no-model", ": no model is set", 'set one for the film, e.g. model "dreamshaper_8.safetensors"'
    if template == "keyframes" and not shot.keyframes:
        return "no-keyframes", " needs keyframes", 'add keyframes "start.png" to "end.png" to the shot'
    if template == "restyle" and not shot.source:
        return "no-source", " needs a source clip", 'add source "footage.mp4" to the shot'
    wanted = len(family.load.text_encoders)
    if r.encoders and len(r.encoders) != wanted:
        return ("encoders", f": {family.title} takes {wanted} text encoder{'s' * (wanted != 1)}, not {len(r.encoders)}",
                "its own: " + ", ".join(family.load.text_encoders))
    if template == "lipsync" and not (family.video and family.video.s2v):
        return ("family-kind", f": {family.title} does not make video from sound",
                'lipsync "wan2.2_s2v_14B_fp8_scaled.safetensors" on the film, a scene or the shot')
    if template == "lipsync" and not (r.start_image or r.start_model or any(
            ln.speaker in shot.cast and (film.character(ln.speaker).reference or film.character(ln.speaker).sheet)
            for ln in shot.lines)):
        return ("lipsync-picture", ": a lip-synced shot needs a picture of the speaker",
                'start "speaker.png", start still "flux1-dev-fp8.safetensors", or a reference image on the character')
    if template == "motion" and family.video and family.video.s2v:
        return ("family-kind", f": {family.title} makes speaking shots (template lipsync), not silent video",
                "use a text-to-video model for this shot")
    if template in IMAGE_ONLY and family.kind == "video":
        return ("family-kind", f": {family.title} makes video, and {template} makes a picture",
                'use template motion, or an image model for this shot (model "flux1-dev.safetensors")')
    if template == "keyframes" and not (family.video and family.video.first_last):
        return ("family-kind", f": first and last frame runs on Wan 2.1 and 2.2, not {family.title}",
                'model "wan2.1_flf2v_720p_14B_fp16.safetensors" on the shot')
    if shot.continues and template != "motion":
        return ("continue", f": it continues the shot before it, which takes the motion template, not {template}",
                "a continuing shot is video made from the last frame before it: template motion on a video model")
    if (r.start_image or r.start_model or shot.continues) and template == "motion" and not (
            family.video and family.video.i2v):
        return ("family-kind", f": {family.title} cannot start from a picture (image to video)",
                "start a shot from a picture on a video model: Wan 2.1/2.2, LTX-2, HunyuanVideo 1.5")
    if template == "motion" and family.kind == "image" and not (family.graph.motion_model or r.motion_model):
        return ("family-kind", f": {family.title} makes stills and has no AnimateDiff motion model",
                "use a video model for motion (Wan 2.2, LTX-2, HunyuanVideo 1.5) or template still")
    return None


def compile_shot(film: Film, shot: Shot, root: Path, env: SandboxedEnvironment, info: ObjectInfo,
                 frames: int | None = None, expanded=None, lines=None,
                 sheets: dict[str, ShotGraph] | None = None, previous: ShotGraph | None = None,
                 memo: GraphMemo | None = None) -> ShotGraph:
    name = shot.render.template
    if memo is not None and name in memo.found:
        found = memo.found[name]
    else:
        found = find_template(env, name) if name != MUSIC_TEMPLATE else None
        if memo is not None:
            memo.found[name] = found
    made, before = {}, {}
    # a continuing shot starts from the last frame before it: no still of its own
    prelude = (compile_shot(film, still_shot(shot, root), root, env, info, frames, expanded, memo=memo)
               if shot.render.start_model and not shot.continues and not shot.render.start_image else None)
    if prelude is not None and prelude.graph is not None:
        made["still"] = _made_input(prelude, "still", f"the still of shot {shot.id}, made first with "
                                                      f"{shot.render.start_model}")
        before[prelude.shot.id] = prelude
    if shot.continues and previous is not None and previous.graph is not None:
        made["continue"] = _made_input(previous, "last", f"the last frame of shot {previous.shot.id}, which it "
                                                         "continues", last_frame=True)
        before[previous.shot.id] = previous
    for member, sheet in (sheets or {}).items():
        if member in shot.cast and sheet.graph is not None:
            made[f"sheet:{member}"] = _made_input(sheet, "sheet", f"the sheet of {member}, rendered first")
            before[sheet.shot.id] = sheet
    ctx, inputs, warnings, prompt = shot_context(film, shot, root, info, frames, expanded, made, lines)
    used = {i.made_by for i in inputs if i.made_by}
    result = ShotGraph(shot=shot, template=name, graph=None, prompt=prompt, inputs=inputs, template_file=found or "",
                       root=str(root), upstream=[sg for sid, sg in before.items() if sid in used])
    if prelude is not None and prelude.diagnostics:
        result.diagnostics.extend(d.model_copy(update={"message": f"{d.message} (the start still)"})
                                  for d in prelude.diagnostics)
        if prelude.graph is None:
            return result
    label = f"shot {shot.id} (template {name})"
    if found is None:
        names = template_names(env)
        guess = did_you_mean(name, names)
        result.diagnostics.append(_diag(shot, "error", "unknown-template", f'{label}: there is no template "{name}"',
                                        f'did you mean "{guess}"?' if guess else "templates: " + ", ".join(names)))
        return result
    problem = _unfit(film, shot, name, families(root))
    if problem is None and name == "lipsync" and ctx["lipsync"] is None:
        problem = ("lipsync-timing", ": a lip-synced shot needs its lines' timing", "storyc check and build give it")
    if problem is not None:
        result.diagnostics.append(_diag(shot, "error", problem[0], f"{label}{problem[1]}", problem[2]))
        return result
    try:
        graph, collected, problems = _render_graph(env, found, ctx, info, memo)
    except jinja2.TemplateError as e:
        where = f"{found}:{e.lineno}" if getattr(e, "lineno", None) else found
        result.diagnostics.append(_diag(shot, "error", "template-error", f"{label}: {where}: {e.message}"))
        return result
    except json.JSONDecodeError as e:
        result.diagnostics.append(_diag(shot, "error", "template-json",
                                        f"{label}: {found} produced invalid JSON at line {e.lineno} column {e.colno}: {e.msg}",
                                        "values come out as JSON already: write {{ prompt.positive }} without quotes"))
        return result
    result.graph = graph
    for w in warnings + list(collected):
        result.diagnostics.append(_diag(shot, "warning", "backend", f"{label}: {w}"))
    for p in problems:
        result.diagnostics.append(_problem(shot, label, p))
    return result


def _render_graph(env: SandboxedEnvironment, found: str, ctx: dict, info: ObjectInfo,
                  memo: GraphMemo | None) -> tuple[dict, tuple[str, ...], tuple[GraphProblem, ...]]:
    """The template's graph, the warnings it gave, and what the server would refuse in it."""
    key = memo.key(found, ctx) if memo is not None else None
    known = memo.get(key) if memo is not None else None
    if known is not None:
        return known
    collected: list[str] = []

    def warn(message: str) -> _Silent:
        collected.append(str(message))
        return _Silent()

    graph = json.loads(env.get_template(found).render(**ctx, warn=warn))
    made = (graph, tuple(collected), tuple(validate(graph, info)))
    if memo is not None:
        memo.put(key, made)
    return made


class GraphMemo:
    """Graphs rendered and validated before, by everything they were made from, for a caller that
    checks one film again and again and only reads the graphs (the language server): after an
    edit, only the shots whose inputs changed are rendered and validated again.

    A key is the template's name and the whole context given to it; the memo is emptied when the
    server's node list or any template file (a project's or the shipped ones) changes. It keeps
    what the last run and this one made, no more: what an edit replaced is forgotten a run later."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple] = {}  # this run's
        self.previous: dict[tuple[str, str], tuple] = {}  # the run before's
        self.found: dict[str, str | None] = {}  # template name → its file
        self._info: ObjectInfo | None = None
        self._stamp: tuple = ()
        self._env: SandboxedEnvironment | None = None

    def environment(self, root: Path, info: ObjectInfo) -> SandboxedEnvironment:
        """The template environment (kept, with the templates it compiled, while no file changes)."""
        env = template_env(root / "templates")
        stamp = (str(root), tuple(env.loader.searchpath), _templates_stamp(env))
        if info is not self._info or stamp != self._stamp:
            self.entries, self.found, self._env = {}, {}, env
        self.previous, self.entries = self.entries, {}
        self._info, self._stamp = info, stamp
        return self._env

    def key(self, found: str, ctx: dict) -> tuple[str, str]:
        given = {k: v for k, v in ctx.items() if k != "nodes"}  # the node list is the memo's own (environment)
        return found, json.dumps(given, sort_keys=True, default=repr)

    def get(self, key: tuple[str, str]) -> tuple | None:
        made = self.entries.get(key) or self.previous.get(key)
        if made is not None:
            self.entries[key] = made
        return made

    def put(self, key: tuple[str, str], made: tuple) -> None:
        self.entries[key] = made


def _templates_stamp(env: SandboxedEnvironment) -> tuple:
    """Name, size and time of change of every file in the template folders."""
    out = []
    for folder in env.loader.searchpath:
        for path in sorted(Path(folder).rglob("*")):
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


def _problem(shot: Shot, label: str, p: GraphProblem) -> Diagnostic:
    """At the shot; a LoRA file the server lacks at the `lora` line that names it (the line to change)."""
    lora = next((lo for lo in shot.render.loras if lo.where and p.input == "lora_name" and f'"{lo.file}"' in p.message),
                None)
    if lora is not None:
        return Diagnostic(severity="error", code=f"graph-{p.code}", message=f"{label}: {p.text()}",
                          file=lora.where.file, span=lora.where.span(len(lora.file) + 2), hint=p.hint)
    return _diag(shot, "error", f"graph-{p.code}", f"{label}: {p.text()}", p.hint)


def with_predecessors(film: Film, only: set[str] | None) -> set[str] | None:
    """`only` and the shots they continue, back to the start of each chain: a continuing shot's
    graph names its predecessor's, so that one is compiled too."""
    if only is None:
        return None
    needed = set(only)
    for i in range(len(film.shots) - 1, 0, -1):
        if film.shots[i].id in needed and film.shots[i].continues:
            needed.add(film.shots[i - 1].id)
    return needed


def compile_film(film: Film, root: Path, info: ObjectInfo, only: set[str] | None = None,
                 timing: Timing | None = None, prompts: dict | None = None,
                 memo: GraphMemo | None = None) -> list[ShotGraph]:
    """Every shot's graph (or those in `only`), each as long as `timing` says the shot lasts;
    `prompts`: the expansion stage's prompts by shot id (the rest assemble the script's words).
    `memo`: graphs made before, for a caller that only reads them (GraphMemo)."""
    env = memo.environment(root, info) if memo is not None else template_env(root / "templates")
    prompts = prompts or {}
    sheets = _sheets(film, root, env, info)
    compiled, previous = [], None
    needed = with_predecessors(film, only)
    for shot in film.shots:
        if needed is not None and shot.id not in needed:
            previous = None
            continue
        sg = compile_shot(film, shot, root, env, info, timing.shots[shot.id].frames if timing else None,
                          prompts.get(shot.id), timing.shots[shot.id].lines if timing else None, sheets, previous,
                          memo=memo)
        previous = sg
        if only is None or shot.id in only:
            compiled.append(sg)
    # a sheet's own problems once, at its character (the first shot that needs it carries them)
    for name, sheet in sheets.items():
        user = next((sg for sg in compiled if name in sg.shot.cast), None)
        if user is not None and sheet.diagnostics:
            user.diagnostics.extend(d.model_copy(update={"message": f"{d.message} ({name}'s sheet)"})
                                    for d in sheet.diagnostics)
    return compiled


def graph_json(graph: dict) -> str:
    """Canonical text of a graph: sorted keys, two-space indent; the same input gives the same bytes."""
    return json.dumps(graph, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def _family_lines(sg: ShotGraph, r) -> list[str]:
    """The model family and where each default came from, for explain."""
    from storylang.check import ORIGINS

    family = families(Path(sg.root)).get(r.family) if sg.root else None
    if family is None:
        return [f"  family {r.family}"]
    lines = [f"  family {family.name}: {family.title} ({ORIGINS[r.family_origin]}); defaults from {family.source or family.file}"]
    if r.from_family:
        lines.append("    from the family: " + ", ".join(f"{k} {getattr(r, k):g}" if isinstance(getattr(r, k), float)
                                                       else f"{k} {getattr(r, k)}" for k in r.from_family))
    encoders = r.encoders or family.load.text_encoders
    if encoders:
        lines.append(f"    text encoders: {', '.join(encoders)} ({'the script' if r.encoders else 'the family'})")
    if r.vae or family.load.vae:
        lines.append(f"    vae: {r.vae or family.load.vae} ({'the script' if r.vae else 'the family'})")
    if family.video:
        lines.append(f"    video: {family.video.fps} fps, {family.video.step}n+1 frames ({family.video.latent})")
    return lines


def explain(sg: ShotGraph, film: Film) -> str:
    """How a shot's graph was made: template, prompt parts and their sources, sampling, inputs, nodes."""
    s, r = sg.shot, sg.shot.render
    lines = [f"shot {s.id}  ({s.where.file}:{s.where.line})  template {sg.template}"
             + (f"  ← {sg.template_file}" if sg.template_file else "")]
    lines.append("  positive:")
    width = max((len(p.source) for p in sg.prompt.positive_parts + sg.prompt.negative_parts), default=8)
    for p in sg.prompt.positive_parts:
        lines.append(f"    {p.source:<{width}}  {p.text}")
    lines.append("  negative:" + ("" if sg.prompt.negative_parts else " (none)"))
    for p in sg.prompt.negative_parts:
        lines.append(f"    {p.source:<{width}}  {p.text}")
    lines.append(f"  model {r.model or '(none)'}, {r.sampler}/{r.scheduler}, {r.steps} steps, cfg {r.cfg:g}, "
                 f"denoise {r.denoise:g}, clip skip {r.clip_skip}, seed {r.seed}")
    lines.extend(_family_lines(sg, r))
    if r.loras:
        lines.append("  loras: " + ", ".join(f"{lo.file} ({lo.model:g}/{lo.clip:g})" for lo in r.loras))
    for gi in sg.inputs:
        lines.append(f"  input {gi.name} ← {gi.purpose}" if gi.made_by or gi.dialogue
                     else f"  input {gi.name} ← {gi.file} ({gi.purpose})")
    if sg.graph:
        lines.append("  nodes: " + ", ".join(f"{k} {v.get('class_type')}" for k, v in sorted(sg.graph.items())))
    return "\n".join(lines)
