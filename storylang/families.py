"""Model families as data: how each family of diffusion models loads, encodes, samples and sizes.

A family is one TOML file in `templates/families/` (shipped) or in a project's own
`templates/families/` (which adds families or replaces shipped ones of the same name). The
file says which model files belong to it (pieces of their names), how the model loads (one
checkpoint, or a diffusion model with its text encoders and VAE, by loader node and type), the
render settings a script leaves unset (sampler, scheduler, steps, cfg), the graph's pieces
(latent node, guidance, shift, sampling style) and, for a video family, its frame rule
(frames = step * n + 1 at the family's own rate). The graph templates read it as `family`.
Adding a family is a data file, and a template change only for a loader or node no family
used before. docs/graphs.md lists the shipped ones.
"""

from __future__ import annotations

import math
import os
import tomllib
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from storylang.diagnostics import OneLineError
from storylang.resources import templates_dir

DEFAULT = "sd1.5"  # a model file whose name says no family: a Stable Diffusion 1.5 checkpoint


class FamilyError(OneLineError):
    pass


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Load(_Data):
    model: Literal["checkpoint", "diffusion"] = "checkpoint"
    weight_dtype: str = "default"
    # a second diffusion model run after the first (Wan 2.2 14B's low-noise expert): the piece of
    # the model's file name to replace, and what replaces it
    second_model: tuple[str, str] | None = None
    text_encoder_node: str = ""  # "" for a checkpoint that carries its own
    text_encoder_type: str = ""
    text_encoders: tuple[str, ...] = ()
    vae: str = ""  # "" for a checkpoint that carries its own
    audio_vae: bool = False  # LTX-2: the checkpoint's audio VAE (LTXVAudioVAELoader)
    audio_encoder: str = ""  # sound to video: the audio encoder (AudioEncoderLoader)


class Defaults(_Data):
    sampler: str = "euler"
    scheduler: str = "normal"
    steps: int = 25
    cfg: float = 7.0
    template: str = "still"


class Graph(_Data):
    latent: str = "EmptyLatentImage"
    multiple: int = 8  # width and height are multiples of this
    guidance: float | None = None  # FluxGuidance on the positive prompt
    shift_node: str = ""  # ModelSamplingSD3 / ModelSamplingAuraFlow
    shift: float | None = None
    sampling: Literal["ksampler", "custom"] = "ksampler"
    sigmas: str = "BasicScheduler"  # custom sampling: Flux2Scheduler, LTXVScheduler or BasicScheduler
    conditioning: str = ""  # LTXVConditioning: the frame rate into the conditioning
    split: float = 0.5  # with a second model: the share of the steps the first one takes
    motion_model: str = ""  # AnimateDiff motion model for `motion` on an image family
    ipadapter: bool = False  # IP-Adapter (character references) works with this family
    # the family's own way to take the cast's reference images (sheets or `reference`), where it has one:
    # "latent": ReferenceLatent on the prompt (FLUX Kontext); "edit": TextEncodeQwenImageEditPlus's images
    reference: Literal["", "latent", "edit"] = ""


class Video(_Data):
    latent: str = "EmptyHunyuanLatentVideo"
    fps: int = 16
    step: int = 4  # the model makes step * n + 1 frames
    first_last: bool = False  # WanFirstLastFrameToVideo runs on it (the keyframes template)
    i2v: str = ""  # its image-to-video node (a shot's `start` picture as the first frame); "" for none
    s2v: str = ""  # its sound-to-video node (the lipsync template); a family with one makes no silent video


class Family(_Data):
    name: str = ""
    title: str
    kind: Literal["image", "video"]
    match: tuple[str, ...] = ()
    source: str = ""  # where its defaults come from
    load: Load = Field(default_factory=Load)
    defaults: Defaults = Field(default_factory=Defaults)
    graph: Graph = Field(default_factory=Graph)
    video: Video | None = None
    file: str = ""  # where it was read, for messages

    def size(self, width: int, height: int) -> tuple[int, int]:
        """The film's size at this family's multiple (nearest, at least one multiple)."""
        m = self.graph.multiple
        return max(round(width / m), 1) * m, max(round(height / m), 1) * m

    def frames(self, seconds: Fraction) -> int:
        """The least frame count of this video family's rule (step * n + 1) that covers `seconds` at its rate."""
        assert self.video is not None
        need = max(math.ceil(seconds * self.video.fps), 1)
        return math.ceil((need - 1) / self.video.step) * self.video.step + 1

    def second_model(self, model: str) -> str | None:
        if self.load.second_model is None:
            return None
        old, new = self.load.second_model
        return model.replace(old, new) if old in model else None


def _read(path: Path) -> Family:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        return Family(**data, name=path.stem, file=path.name)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise FamilyError(f"model family {path.name} cannot be read: {e}") from e
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"])
        raise FamilyError(f"model family {path.name}: {where}: {first['msg']}") from e


def _folder_families(folder: Path) -> dict[str, Family]:
    """The families in a folder; read again only when one of its files changed (every shot's graph
    asks, and a check of a long film would otherwise parse the same files thousands of times)."""
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return {}
    stamp = tuple((e.name, e.is_symlink(), st.st_size, st.st_mtime_ns)
                  for e in entries if e.name.endswith(".toml") for st in (e.stat(),))
    return dict(_read_folder(str(folder), stamp))


@lru_cache(maxsize=16)
def _read_folder(folder: str, stamp: tuple) -> tuple[tuple[str, Family], ...]:
    # a project's family that is a link to a file elsewhere is not read (as its templates)
    where = Path(folder)
    real = where.resolve()
    return tuple((p.stem, _read(p)) for p in sorted(where.glob("*.toml"))
                 if p.is_file() and p.resolve().parent == real)


@lru_cache(maxsize=1)
def _shipped() -> dict[str, Family]:
    return _folder_families(templates_dir() / "families")


def families(project: Path | None = None) -> dict[str, Family]:
    """Every family by name: the shipped ones, then a project's `templates/families/` over them."""
    found = dict(_shipped())
    if project is not None:
        found.update(_folder_families(project / "templates" / "families"))
    return found


def detect(model: str, known: dict[str, Family]) -> Family | None:
    """The family whose longest name piece is in the model file's name; None when none is."""
    name = Path(model).name.lower()
    best, length = None, 0
    for family in known.values():
        for piece in family.match:
            if piece.lower() in name and len(piece) > length:
                best, length = family, len(piece)
    return best
