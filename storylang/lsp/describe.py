"""What hovering says: a shot (its length after speech, seed, template, family, the prompt and
where each part came from, its picture once built), a character (look, voice, LoRAs,
reference, sheet), a camera move (what it does and by how much). Markdown, from the film."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

from storylang.film import CameraMove, Character, Film, Shot
from storylang.lsp.analysis import Analysis

MOVES = {
    "static": "the camera holds still", "push": "the camera moves toward the subject",
    "pull": "the camera moves away from the subject", "zoom": "the lens zooms (the camera stays)",
    "pan": "the camera turns on its axis, sideways", "tilt": "the camera turns on its axis, up or down",
    "truck": "the camera travels sideways", "pedestal": "the camera rises or sinks",
    "crane": "the camera rises or sinks on a crane", "orbit": "the camera circles the subject",
    "roll": "the camera rolls about the lens axis", "shake": "a handheld shake",
}


def hover(analysis: Analysis, file: str, line: int, column: int, timing=None) -> str | None:
    film = analysis.draft  # while the script has errors, what of it resolved
    name = analysis.name_at(file, line, column)
    if name is not None:
        known = film.character(name) if film and name in {c.name for c in film.characters} else None
        if known is None and any(p.kind == "declaration" for p in analysis.places(name)):
            return f"**{name}**: its look and voice show once the script's errors are fixed"
        return character(known, name)
    found = analysis.setting_at(file, line, column)
    shot = analysis.shot_at(file, line)
    if found is not None and found[0].key == "camera" and shot is not None and shot.camera:
        return "\n\n".join(camera(m, film.fps if film else 24) for m in shot.camera)
    if shot is not None and shot.where.line == line and film is not None:
        return describe_shot(analysis, film, shot, timing)
    return None


def character(c: Character | None, name: str) -> str:
    if c is None:
        return f"**{name}**: not declared (`character {name}`)"
    v = c.voice
    out = [f"**{c.name}**", f"look: {c.look or '(none)'}",
           f"voice: `{v.id}`" + (f" on {v.engine}" if v.engine != "espeak" else f", rate {v.rate}, pitch {v.pitch}"),
           f"seed: {c.seed}"]
    if c.loras:
        out.append("LoRAs: " + ", ".join(f"`{lo.file}` {lo.model:g}" for lo in c.loras))
    if c.reference:
        out.append(f"reference: `{c.reference.file}` ({c.reference.weight:g})")
    if c.sheet is not None:
        out.append(f"sheet: {c.sheet or 'front view, full body'}")
    return "  \n".join(out)


def camera(m: CameraMove, fps) -> str:
    what = MOVES.get(m.move, m.move)
    unit = "degrees" if m.move in ("orbit", "roll") else "%"
    amount = f", by {m.amount:g} {unit}" if m.amount else ""
    direction = f" {m.direction}" if m.direction else ""
    return f"**camera {m.move}{direction}** ({m.speed}, {m.easing}): {what}{amount}"


def describe_shot(analysis: Analysis, film: Film, shot: Shot, timing=None) -> str:
    from storylang.comfy.prompts import assemble_prompt

    fps = float(film.fps)
    frames = timing.shots[shot.id].frames if timing is not None and shot.id in timing.shots else shot.frames
    length = f"{frames / fps:.2f} s ({frames} frames)"
    if frames != shot.frames:
        length += f", lengthened from {shot.frames / fps:.2f} s to fit its speech"
    elif timing is None and shot.lines:
        length += " (before speech: the check after a pause gives the final length)"
    r = shot.render
    out = [f"**shot {shot.id}** · {shot.framing}" + (f" on {', '.join(shot.cast)}" if shot.cast else ""),
           f"length: {length}", f"seed {r.seed} · template `{r.template}` · family `{r.family}`"
           + (f" · model `{r.model}`" if r.model else "")]
    prompt = assemble_prompt(film, shot)
    out.append(f"prompt: {prompt.positive}")
    out += [f"- {p.source}: {p.text}" for p in prompt.positive_parts]
    picture = built_picture(analysis.path, shot.id)
    if picture is not None:
        out.append(f"![shot {shot.id}]({'file://' + quote(str(picture))})")
    return "  \n".join(out)


def built_picture(script: Path, shot_id: str) -> Path | None:
    """The picture the last build used for this shot (from its edit list), if there is one."""
    edit = _timeline(script)
    clip = next((c for c in (edit or {}).get("clips", []) if c.get("shot") == shot_id), None)
    if not clip or not clip.get("files"):
        return None
    picture = script.parent / clip["files"][0]
    return picture if picture.is_file() else None


def shot_start(analysis: Analysis, shot: Shot) -> tuple[Path, float] | None:
    """The built film and the second its shot starts at, from the last build's edit list."""
    from storylang.builddir import film_dir

    edit = _timeline(analysis.path)
    clip = next((c for c in (edit or {}).get("clips", []) if c.get("shot") == shot.id), None)
    film = film_dir(analysis.path) / f"{analysis.path.stem}.mp4"
    if clip is None or not film.is_file():
        return None
    fps = edit.get("fps_num", 24) / edit.get("fps_den", 1)
    return film, clip["start"] / fps


def template_file(analysis: Analysis, file: str, line: int, column: int) -> Path | None:
    found = analysis.setting_at(file, line, column)
    if found is None or found[0].key != "template" or not found[0].values:
        return None
    from storylang.comfy.graphs import find_template, template_env

    env = template_env(analysis.path.parent / "templates")
    name = find_template(env, found[0].values[0].text)
    if name is None:
        return None
    _, filename, _ = env.loader.get_source(env, name)
    return Path(filename) if filename else None


def _timeline(script: Path) -> dict | None:
    from storylang.builddir import film_dir

    try:
        return json.loads((film_dir(script) / "timeline.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None

