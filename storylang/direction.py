"""A parenthetical is direction: `MARA (whispering):` changes how the line sounds.

A server that takes instructions (the OpenAI speech API's `instructions`) is given the words
as they are. espeak-ng has no such input, so the words it knows are mapped to its rate, its
pitch and, for a whisper, its whisper variant (the table below, documented in docs/voices.md).
Words it does not know (`(beat)`, `(V.O.)`) leave the voice as it is.
"""

from __future__ import annotations

import re

from storylang.film import Voice

# effect: (rate factor, pitch change, words that ask for it)
EFFECTS: dict[str, tuple[float, int, tuple[str, ...]]] = {
    "whisper": (0.90, 0, ("whisper", "whispers", "whispering", "whispered", "hushed")),
    "shout": (1.10, 20, ("shout", "shouts", "shouting", "yelling", "yells", "screaming", "angry", "angrily",
                         "furious", "loud", "loudly")),
    "soft": (0.90, -8, ("soft", "softly", "quiet", "quietly", "gently", "tender", "tenderly")),
    "excited": (1.15, 12, ("excited", "excitedly", "eager", "eagerly", "cheerful", "cheerfully", "happily")),
    "sad": (0.85, -12, ("sad", "sadly", "tearful", "tearfully", "grieving", "mournful")),
    "slow": (0.80, 0, ("slow", "slowly", "deliberately", "hesitant", "hesitantly")),
    "fast": (1.25, 5, ("fast", "quickly", "hurried", "hurriedly", "rushed", "breathless")),
    "nervous": (1.10, 8, ("nervous", "nervously", "anxious", "anxiously", "afraid", "scared")),
    "tired": (0.85, -10, ("tired", "sleepy", "weary", "exhausted", "wearily")),
    "flat": (0.95, -6, ("flat", "flatly", "deadpan", "coldly")),
}
_WORDS = {word: effect for effect, (_, _, words) in EFFECTS.items() for word in words}
RATE, PITCH = (80, 450), (0, 99)


def effects(parenthetical: str | None) -> list[str]:
    """The effects a parenthetical asks espeak-ng for, each once, in the order written."""
    found = [_WORDS[w] for w in re.findall(r"[a-z]+", (parenthetical or "").lower()) if w in _WORDS]
    return list(dict.fromkeys(found))


def directed(voice: Voice, parenthetical: str | None) -> Voice:
    """An espeak-ng voice as the parenthetical directs it (the same voice when it asks nothing)."""
    asked = effects(parenthetical)
    if voice.engine != "espeak" or not asked:
        return voice
    rate, pitch, vid = float(voice.rate), voice.pitch, voice.id
    for effect in asked:
        factor, change, _ = EFFECTS[effect]
        rate, pitch = rate * factor, pitch + change
        if effect == "whisper":
            base, _, variant = vid.partition("+")
            vid = f"{base}+{'whisperf' if variant.startswith('f') or variant == 'whisperf' else 'whisper'}"
    return voice.model_copy(update={"id": vid, "rate": min(max(round(rate), RATE[0]), RATE[1]),
                                    "pitch": min(max(pitch, PITCH[0]), PITCH[1])})
