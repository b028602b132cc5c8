"""The language's statements, declared once: the grammar's KEY terminal, the parser's
suggestions and the resolver's rules of where each may be written all come from here.

PLACES says where a statement may stand: "film" (the header), "scene", "shot", "character";
a statement allowed in the film, a scene and a shot cascades (a shot inherits it from its
scene, a scene from the film). REPEATABLE statements add up when given twice; any other
statement given twice in one place is an error.
"""

from __future__ import annotations

CASCADE = ("film", "scene", "shot")

PLACES: dict[str, tuple[str, ...]] = {
    # the film header only
    "title": ("film",), "author": ("film",), "llm": ("film",), "format": ("film",), "end": ("film",), "include": ("film",),
    # anywhere from the film down to a shot: the shot inherits the nearest
    **{k: CASCADE for k in ("style", "model", "vae", "encoder", "start", "lipsync", "sampler", "scheduler", "steps", "cfg", "denoise",
                            "clip skip", "narrator", "template", "duration", "overrun", "upscale", "motion",
                            "controlnet", "lighting", "mood", "camera", "setting", "expand")},
    "negative": CASCADE + ("character",), "seed": CASCADE + ("character",), "lora": CASCADE + ("character",),
    "note": CASCADE + ("character",),
    "music": ("film", "scene"),
    "action": ("shot",), "narrate": ("shot",), "at": ("shot",), "keyframes": ("shot",), "source": ("shot",),
    "look": ("character",), "voice": ("character",), "reference": ("character",), "sheet": ("character",),
}
REPEATABLE = frozenset({"lora", "at", "narrate", "include", "note", "camera", "action"})

# Written as two words in scripts; the grammar spells it out ("clip" "skip").
_SPELLED_OUT = {"clip skip"}
# `template` has its own rule in the grammar (its value may be a keyword itself).
_OWN_RULE = {"template"}

ALL = tuple(PLACES)
ONE_WORD = tuple(k for k in ALL if k not in _SPELLED_OUT and k not in _OWN_RULE)


def allowed_in(place: str) -> frozenset[str]:
    return frozenset(k for k, places in PLACES.items() if place in places)


def where_it_belongs(key: str) -> str:
    """Where a statement may be written, for an error about one written elsewhere."""
    places = PLACES.get(key, ())
    if places == ("film",):
        return "the top level of a script" if key == "include" else "the film header"
    if set(CASCADE) <= set(places):
        return "the film header, a scene or a shot"
    names = {"film": "the film header", "scene": "a scene", "shot": "a shot", "character": "a character"}
    return " or ".join(names[p] for p in places)


def key_pattern() -> str:
    """The grammar's KEY terminal: any one-word statement, not followed by a word character."""
    return "/(" + "|".join(ONE_WORD) + r")(?![\w\-.+'])/"
