"""The resolved film: the one intermediate representation every later stage consumes.

Every default is applied, every name is checked, every time is a whole number of frames
and every path is relative to the directory of the main script (the film root).
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from storylang.diagnostics import Span


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Where(Model):
    """Where in the source a thing was written, for messages of later stages."""

    file: str
    line: int
    column: int = 1

    def span(self, width: int = 1) -> Span:
        """The span of `width` characters from here, for a diagnostic."""
        return Span(line=self.line, column=self.column, end_line=self.line, end_column=self.column + width)


class Voice(Model):
    id: str
    rate: int = 175  # words per minute
    pitch: int = 50  # 0..99
    engine: str = "espeak"  # "espeak" (offline, the default) or "openai" (a server of the OpenAI speech API)
    # the `voice`/`narrator` statement that named it, for messages; never part of what the film is made of
    where: Where | None = Field(default=None, exclude=True)


class Lora(Model):
    file: str
    model: float = 1.0
    clip: float = 1.0
    # where the file was named, for messages about it; never part of what the film is made of
    where: Where | None = Field(default=None, exclude=True)


class Reference(Model):
    file: str
    weight: float = 0.8


class Character(Model):
    name: str
    look: str = ""
    negative: str = ""
    seed: int
    voice: Voice
    loras: tuple[Lora, ...] = ()
    reference: Reference | None = None
    # a reference rendered first (a character sheet): the words of its view; None for no sheet
    sheet: str | None = None
    where: Where


class MusicPrompt(Model):
    """`music generate "words" 60s`: music made on ComfyUI (ACE-Step) instead of read from a file."""

    text: str
    frames: int  # how long a piece to make, at the film's rate
    model: str = "ace_step_v1_3.5b.safetensors"
    seed: int = 0
    lyrics: str = ""  # none: instrumental


class MusicCue(Model):
    file: str = ""  # the music file; for a generated cue, what plays where it is not rendered ("" for none)
    generate: MusicPrompt | None = None
    volume_db: float = -12.0
    fade_in: int = 0  # frames
    fade_out: int = 0  # frames
    duck_db: float = -10.0  # extra attenuation under speech
    # the statement, for messages; never part of what the film is made of
    where: Where | None = Field(default=None, exclude=True)


class Scene(Model):
    index: int
    heading: str
    interior: str  # INT, EXT, INT/EXT or EST
    place: str
    time: str
    setting: str = ""
    lighting: str = ""
    mood: str = ""
    music: MusicCue | None = None
    music_off: bool = False
    where: Where


class CameraMove(Model):
    move: str  # static, push, pull, zoom, pan, tilt, truck, pedestal, crane, orbit, roll, shake
    direction: str | None = None
    speed: str = "medium"
    amount: float = 0.0  # % for scale and travel moves, degrees for orbit and roll
    easing: str = "ease-in-out"


class Line(Model):
    """A spoken line: narration (speaker None) or dialogue."""

    kind: Literal["narration", "dialogue"]
    speaker: str | None = None
    parenthetical: str | None = None
    text: str
    voice: Voice
    where: Where


class Transition(Model):
    kind: Literal["cut", "dissolve", "fade", "wipe"]
    direction: str | None = None
    frames: int = 0
    continues: bool = Field(default=False, exclude=True)  # `> continue`: see Shot.continues


class Cue(Model):
    """A prompt schedule entry: from `frame` on, the shot shows `text`."""

    frame: int
    text: str


class Keyframes(Model):
    start: str
    end: str


class SourceClip(Model):
    file: str
    start: int = 0  # frames into the source, at the film's rate
    end: int | None = None


class Expand(Model):
    """`expand on|off` or `expand "instruction"`: whether an LLM writes this shot's prompt (see expand/)."""

    on: bool = True
    instruction: str = ""


class Llm(Model):
    """`llm "model" [server "url"]` in the film header: which LLM expands the prompts."""

    model: str
    server: str | None = None


class RenderSettings(Model):
    model: str | None = None
    family: str = "sd1.5"  # the model family (templates/families/): how the model loads and samples
    encoders: tuple[str, ...] = ()  # text encoders, when not the family's
    # image to video: the first frame is the writer's picture, or a still made first with an image model
    start_image: str | None = None
    start_model: str | None = None
    start_family: str | None = None
    lipsync: str | None = None  # a sound-to-video model: shots whose cast speaks render with it (lipsync)
    vae: str | None = None
    sampler: str = "euler"
    scheduler: str = "normal"
    steps: int = 25
    cfg: float = 7.0
    clip_skip: int = 1
    denoise: float = 1.0
    seed: int = 0
    template: str = "still"
    style: str = ""
    negative: str = ""
    loras: tuple[Lora, ...] = ()
    upscale_model: str | None = None
    upscale_factor: float = 2.0
    motion_model: str | None = None
    controlnet: str | None = None
    controlnet_kind: str = "depth"
    # for messages and explain, not part of what the film is made of: how the family was found
    # ("named", "file name", "assumed") and which settings came from its defaults
    family_origin: str = Field(default="assumed", exclude=True)
    from_family: tuple[str, ...] = Field(default=(), exclude=True)


class Shot(Model):
    id: str  # the locked shot number, or an id derived from the shot's content
    # `> continue` before it: its first frame is the last frame of the shot before (in the graph,
    # which is what its renders are keyed by; not part of the film's own description)
    continues: bool = Field(default=False, exclude=True)
    number: str | None = None
    name: str | None = None
    scene: int
    framing: str
    angle: str | None = None
    cast: tuple[str, ...] = ()
    frames: int
    action: str = ""
    setting: str = ""
    lighting: str = ""
    mood: str = ""
    camera: tuple[CameraMove, ...] = ()
    lines: tuple[Line, ...] = ()
    transition: Transition | None = None  # into the next shot
    schedule: tuple[Cue, ...] = ()
    keyframes: Keyframes | None = None
    source: SourceClip | None = None
    overrun: Literal["extend", "error"] = "extend"
    expand: Expand | None = None  # None: the script does not say (the build's --expand decides)
    render: RenderSettings
    where: Where


class Film(Model):
    title: str = "Untitled"
    author: str = ""
    title_frames: int = 0  # the opening title card (title and author), when the script gives a title
    # where `title` and `end` were written ("title"/"end" → Where), for messages; not part of the film
    card_where: dict[str, Where] = Field(default_factory=dict, exclude=True)
    end: str = ""  # the end card's words
    end_frames: int = 0
    width: int = 1280
    height: int = 720
    fps_num: int = 24
    fps_den: int = 1
    narrator: Voice = Voice(id="en-us")
    llm: Llm | None = None
    fade_in: int = 0
    fade_out: int = 0
    characters: tuple[Character, ...] = ()
    scenes: tuple[Scene, ...] = ()
    shots: tuple[Shot, ...] = ()
    script: str  # the main script's file name, relative to the film root
    files: tuple[str, ...] = ()  # every script read, main first

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    def character(self, name: str) -> Character:
        for c in self.characters:
            if c.name == name:
                return c
        raise KeyError(name)


def line_key(shot: Shot, index: int) -> str:
    """A spoken line's identity within the film: its shot and its place in the shot."""
    return f"{shot.id}:{index}"
