"""The film words the language understands: framings, camera moves, transitions.

One vocabulary for every backend (see docs/language.md): each backend compiles these
canonical names to what it can do.
"""

from __future__ import annotations

# canonical framing → (prompt words, aliases)
FRAMINGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "extreme wide": ("extreme wide shot, vast landscape, tiny figures", ("ews", "xws", "extreme long")),
    "wide": ("wide shot", ("ws", "long")),
    "full": ("full body shot", ("fs", "full body")),
    "medium wide": ("medium wide shot, framed from the knees up", ("mws", "cowboy", "medium long")),
    "medium": ("medium shot, framed from the waist up", ("ms", "mid")),
    "medium close": ("medium close-up, framed from the chest up", ("mcu", "medium close up", "medium close-up")),
    "close": ("close-up", ("cu", "close up", "close-up", "closeup")),
    "extreme close": ("extreme close-up, macro detail", ("ecu", "xcu", "extreme close up", "extreme close-up")),
    "over the shoulder": ("over-the-shoulder shot", ("ots", "over shoulder")),
    "two shot": ("two shot, two people in frame", ("two-shot",)),
    "insert": ("insert shot, detail of an object", ()),
    "point of view": ("point of view shot, first person", ("pov",)),
    "aerial": ("aerial view, bird's eye view", ("overhead", "top down", "birds eye")),
    "establishing": ("establishing shot", ()),
}
DEFAULT_FRAMING = "medium"

ANGLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "low angle": ("low angle", ("low",)),
    "high angle": ("high angle", ("high",)),
    "eye level": ("eye level", ()),
    "dutch angle": ("dutch angle, tilted horizon", ("dutch",)),
}


def _phrases(table: dict[str, tuple[str, tuple[str, ...]]]) -> dict[tuple[str, ...], str]:
    out: dict[tuple[str, ...], str] = {}
    for name, (_, aliases) in table.items():
        out[tuple(name.split())] = name
        for a in aliases:
            out[tuple(a.split())] = name
    return out


FRAMING_PHRASES = _phrases(FRAMINGS)
ANGLE_PHRASES = _phrases(ANGLES)

# Camera moves: phrase → (move, direction). Directions are those the move has.
CAMERA_MOVES: dict[tuple[str, ...], tuple[str, str | None]] = {
    ("static",): ("static", None),
    ("locked",): ("static", None),
    ("push", "in"): ("push", "in"),
    ("dolly", "in"): ("push", "in"),
    ("pull", "out"): ("pull", "out"),
    ("pull", "back"): ("pull", "out"),
    ("dolly", "out"): ("pull", "out"),
    ("zoom", "in"): ("zoom", "in"),
    ("zoom", "out"): ("zoom", "out"),
    ("pan", "left"): ("pan", "left"),
    ("pan", "right"): ("pan", "right"),
    ("tilt", "up"): ("tilt", "up"),
    ("tilt", "down"): ("tilt", "down"),
    ("truck", "left"): ("truck", "left"),
    ("truck", "right"): ("truck", "right"),
    ("pedestal", "up"): ("pedestal", "up"),
    ("pedestal", "down"): ("pedestal", "down"),
    ("crane", "up"): ("crane", "up"),
    ("crane", "down"): ("crane", "down"),
    ("orbit", "left"): ("orbit", "left"),
    ("orbit", "right"): ("orbit", "right"),
    ("roll", "left"): ("roll", "left"),
    ("roll", "right"): ("roll", "right"),
    ("roll", "ccw"): ("roll", "left"),
    ("roll", "cw"): ("roll", "right"),
    ("shake",): ("shake", None),
    ("handheld",): ("shake", None),
}
CAMERA_MOVE_NAMES = sorted({" ".join(p) for p in CAMERA_MOVES})

SPEEDS = {"slow": "slow", "slowly": "slow", "medium": "medium", "steady": "medium", "fast": "fast", "quick": "fast"}
EASINGS = {
    "linear": "linear",
    "ease-in": "ease-in",
    "ease-out": "ease-out",
    "ease-in-out": "ease-in-out",
    "ease": "ease-in-out",
    "smooth": "ease-in-out",
}

# How far a move goes over the shot when the script gives no amount, by speed.
# push/pull/zoom: % of magnification; pan/tilt/truck/pedestal/crane: % of the frame;
# orbit/roll: degrees; shake: % of the frame as the shake's amplitude.
AMOUNT_UNITS = {
    "push": "%", "pull": "%", "zoom": "%",
    "pan": "%", "tilt": "%", "truck": "%", "pedestal": "%", "crane": "%",
    "orbit": "deg", "roll": "deg", "shake": "%",
}
DEFAULT_AMOUNTS = {
    "%": {"slow": 10.0, "medium": 20.0, "fast": 35.0},
    "deg": {"slow": 5.0, "medium": 12.0, "fast": 25.0},
}
SHAKE_AMOUNTS = {"slow": 0.5, "medium": 1.0, "fast": 2.0}

# Prompt words for models that follow camera language in text.
CAMERA_PROMPT_WORDS = {
    ("push", "in"): "slow push in, dolly in",
    ("pull", "out"): "pull back, dolly out",
    ("zoom", "in"): "zoom in",
    ("zoom", "out"): "zoom out",
    ("pan", "left"): "camera pans left",
    ("pan", "right"): "camera pans right",
    ("tilt", "up"): "camera tilts up",
    ("tilt", "down"): "camera tilts down",
    ("truck", "left"): "camera tracks left",
    ("truck", "right"): "camera tracks right",
    ("pedestal", "up"): "camera rises",
    ("pedestal", "down"): "camera lowers",
    ("crane", "up"): "crane shot rising",
    ("crane", "down"): "crane shot descending",
    ("orbit", "left"): "camera orbits left around the subject",
    ("orbit", "right"): "camera orbits right around the subject",
    ("roll", "left"): "camera rolls",
    ("roll", "right"): "camera rolls",
    ("shake", None): "handheld camera",
    ("static", None): "static camera",
}

# Transitions: word → canonical kind; default length in seconds.
TRANSITIONS = {"cut": "cut", "dissolve": "dissolve", "crossfade": "dissolve", "mix": "dissolve",
               "fade": "fade", "wipe": "wipe", "continue": "cut"}  # continue: a cut into the same motion
TRANSITION_DEFAULT_SECONDS = {"cut": "0", "dissolve": "0.5", "fade": "1", "wipe": "0.5"}
WIPE_DIRECTIONS = ("left", "right", "up", "down")
