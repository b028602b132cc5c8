"""What the resolver knows before it reads a script: where statements go, defaults, seeds, frames,
and the context that cascades from the film to scenes and shots."""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass, field
from fractions import Fraction

from storylang import film as f
from storylang.syntax import keywords

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
    expand: object = None  # film.Expand once a film, scene or shot says `expand`
    seen: dict = field(default_factory=dict)  # key → where it was set on this film, scene or shot

    def child(self) -> "_Defaults":
        c = copy.copy(self)
        c.render = dict(self.render)
        c.loras = list(self.loras)
        c.seed_fixed = None
        c.seen = {}
        return c



def _clean(text: str) -> str:
    """Writers' text with runs of whitespace (line breaks of long text) folded to one space."""
    return re.sub(r"\s+", " ", text).strip()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _seconds_text(frames: int, fps: Fraction) -> str:
    s = Fraction(frames) / fps
    return f"{float(s):g}s"
