"""Generated music (`music generate "words" 60s`): the film with what the renderer made of each cue.

A generated cue is rendered like a shot (comfy/graphs.py compile_music, one job on the pool,
cached by its graph). Where it was not made (the animatic renders no music, a server lacks the
nodes, the render failed) the cue plays its `fallback` file, or no music: the cue still ends the
one before it, as `music off` would.
"""

from __future__ import annotations

from storylang.comfy.graphs import music_id
from storylang.film import Film

NOT_MADE = "the animatic renderer makes no music: build with --comfy URL to make it"


def scored(film: Film, made: dict[str, str], why: dict[str, str]) -> tuple[Film, list[str]]:
    """The film with each generated cue's file the music made for it (`made`: id → file relative to
    the film's folder); a note for each cue that was not made, with `why` (id → reason)."""
    scenes, notes = [], []
    for scene in film.scenes:
        cue = scene.music
        if cue is None or cue.generate is None:
            scenes.append(scene)
            continue
        uid = music_id(scene)
        if uid in made:
            scenes.append(scene.model_copy(update={"music": cue.model_copy(update={"file": made[uid]})}))
            continue
        at = f"{cue.where.file}:{cue.where.line}" if cue.where else scene.heading
        instead = f"its fallback {cue.file} plays instead" if cue.file else "the scene has no music"
        notes.append(f"scene {scene.index + 1} music ({at}) not made: {why.get(uid, NOT_MADE)}; {instead}")
        scenes.append(scene)
    return film.model_copy(update={"scenes": tuple(scenes)}), notes


def failed(missing: dict[str, list], failures: dict[str, tuple]) -> dict[str, str]:
    """Why each generated cue was not made on ComfyUI: no server can run its graph, or its render failed."""
    why = {uid: "no server can run its graph (" + (diags[0].message.split(": ", 1)[-1] if diags else "?") + ")"
           for uid, diags in missing.items()}
    why.update({uid: f"it failed{' on ' + server if server else ''}: {message}"
                for uid, (message, _hint, server) in failures.items()})
    return why
