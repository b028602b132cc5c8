"""The renderer seam: every way of making a film's pictures behind one small protocol.

A renderer receives the resolved film and its timing (every shot's final frame count) and
gives back a picture source per shot (a still, two keyframes or a video file in the build
cache) plus the title and end cards; the edit list and the assembly read only those
pictures, so a new renderer needs no change to either. `animatic` draws storyboard cards;
`comfy` runs each shot's graph on ComfyUI servers.

    plan(film, timing, ctx)   → what would be made and what is already cached (dry run)
    render(film, timing, ctx) → Rendered: pictures, counts, notes and failures
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from storylang.cache import Cache
from storylang.diagnostics import Diagnostic
from storylang.film import Film, Model
from storylang.progress import Progress
from storylang.timing import Timing

TITLE_CARD, END_CARD = "#title", "#end"  # the clips of the title and end cards (no shot has such an id)


class Cancelled(Exception):
    """A render stopped because a newer edit superseded it (its queued and running work withdrawn)."""


class Overlay(Model):
    """A transparent image laid over a clip's frames start..end-1 (counted from the clip's start)."""

    file: str  # relative to the film root
    start: int
    end: int


@dataclass(frozen=True)
class ShotPicture:
    """What a renderer made for a shot: a still, two keyframe images or a video clip, in the cache."""

    kind: Literal["still", "keyframes", "video"]
    files: tuple[str, ...]
    source_in: int = 0
    overlays: tuple[Overlay, ...] = ()


@dataclass
class RenderContext:
    root: Path  # the film's folder; pictures are named relative to it
    cache: Cache
    jobs: int = 1
    with_lines: bool = True  # storyboard words include the spoken line (not when subtitles are burnt in)
    progress: Progress = field(default_factory=Progress)
    build_dir: Path | None = None  # where a renderer keeps its journal and manifest (None: a dry run)
    cancel: object = None  # a threading.Event set when a newer edit supersedes the build (watch mode)
    prompts: dict = field(default_factory=dict)  # the expansion stage's prompts by shot id (expand/)
    spoken: dict = field(default_factory=dict)  # line key (film.line_key) → its spoken WAV, once speech is done
    landed: object = None  # called with (shot id, ShotPicture) as each render lands (the film fills in)
    rendering: object = None  # called once a renderer starts work that takes a while (not when all is cached)


@dataclass
class Plan:
    todo: list[str]  # shot ids whose pictures would be made
    cached: list[str]  # shot ids whose pictures are in the cache
    kind: str = "card"  # what a picture is, in the plan's words ("card", "render")
    pictures: dict | None = None  # the pictures render() would give, when known without rendering
    words: list[str] = field(default_factory=list)  # shots whose storyboard words would be drawn
    reasons: list[str] = field(default_factory=list)  # what else would be made, and why (generated music)


@dataclass
class Rendered:
    pictures: dict[str, ShotPicture]  # by shot id, and by the title and end cards' clip ids
    made: int = 0
    reused: int = 0
    labels_drawn: int = 0
    notes: list[str] = field(default_factory=list)  # said in the build's summary
    failures: list[Diagnostic] = field(default_factory=list)  # shots that fell back to a card
    music: dict[str, str] = field(default_factory=dict)  # generated music by cue id ("music.2"): file from the root
    music_why: dict[str, str] = field(default_factory=dict)  # why a generated cue was not made
    incomplete: bool = False  # something failed that the next build should try again (a music render)


class Renderer(Protocol):
    name: str

    def plan(self, film: Film, timing: Timing, ctx: RenderContext) -> Plan: ...

    def render(self, film: Film, timing: Timing, ctx: RenderContext) -> Rendered: ...


def rel(path: Path, root: Path) -> str:
    """A cache file as the edit list names it: relative to the film's folder, with slashes."""
    return Path(os.path.relpath(path, root)).as_posix()
