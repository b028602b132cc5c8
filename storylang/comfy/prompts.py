"""Prompt assembly: the words a shot's graph is conditioned on, and where each came from.

positive = action, the looks of the characters in frame, setting, lighting, mood, framing
(and angle) words, style; negative = the film's/scene's/shot's negative words and the
negatives of the characters in frame. `storyc graph --explain` prints the parts.
"""

from __future__ import annotations

from dataclasses import dataclass

from storylang import vocabulary as vocab
from storylang.film import Film, Shot


@dataclass(frozen=True)
class PromptPart:
    source: str  # e.g. "action", "look of MARA", "style"
    text: str


@dataclass(frozen=True)
class Prompt:
    positive: str
    negative: str
    positive_parts: tuple[PromptPart, ...]
    negative_parts: tuple[PromptPart, ...]


def camera_words(shot: Shot) -> str:
    return ", ".join(vocab.CAMERA_PROMPT_WORDS.get((m.move, m.direction), m.move) for m in shot.camera)


def expanded_prompt(expanded, with_camera_words: bool = False) -> Prompt:
    """The prompt an LLM wrote for the shot (expand/), as pinned in the lockfile."""
    how = f"from {expanded.lock}" if expanded.origin == "lock" else f"asked now, pinned in {expanded.lock}"
    source = f"expansion ({how}; {expanded.model or 'model unknown'}; key {expanded.key[:12]})"
    positive = [PromptPart(source, expanded.positive)]
    if with_camera_words and expanded.camera:
        positive.append(PromptPart("camera (expansion)", expanded.camera))
    negative = (PromptPart(source, expanded.negative),) if expanded.negative else ()
    return Prompt(positive=", ".join(p.text for p in positive), negative=expanded.negative,
                  positive_parts=tuple(positive), negative_parts=negative)


def assemble_prompt(film: Film, shot: Shot, with_camera_words: bool = False) -> Prompt:
    parts: list[PromptPart] = []

    def add(source: str, text: str) -> None:
        if text.strip():
            parts.append(PromptPart(source, text.strip()))

    add("action", shot.action)
    for name in shot.cast:
        add(f"look of {name}", film.character(name).look)
    add("setting", shot.setting)
    add("lighting", shot.lighting)
    add("mood", shot.mood)
    framing = vocab.FRAMINGS.get(shot.framing, (shot.framing, ()))[0]
    if shot.angle:
        framing += ", " + vocab.ANGLES[shot.angle][0]
    add("framing", framing)
    if with_camera_words:
        add("camera", camera_words(shot))
    add("style", shot.render.style)
    negatives: list[PromptPart] = []
    if shot.render.negative.strip():
        negatives.append(PromptPart("negative", shot.render.negative.strip()))
    for name in shot.cast:
        neg = film.character(name).negative
        if neg.strip():
            negatives.append(PromptPart(f"negative of {name}", neg.strip()))
    return Prompt(
        positive=", ".join(p.text for p in parts),
        negative=", ".join(p.text for p in negatives),
        positive_parts=tuple(parts),
        negative_parts=tuple(negatives),
    )
