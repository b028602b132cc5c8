"""A project's prompt book: curated example shot → prompt pairs, sent as few-shot examples.

    # promptbook.toml (named by [llm] book in storyc.toml)
    [[example]]
    shot = "Mara climbs the stairs of the lighthouse"
    positive = "elderly woman in a yellow raincoat climbing a spiral iron staircase, ..."
    negative = "blurry, extra limbs"
    camera = ""

A book of at most EXAMPLES entries is sent whole; from a larger one the EXAMPLES closest to
the shot are chosen by Jaccard similarity of their word sets (lower-cased words of three or
more letters, a few English function words left out), ties broken by the book's order, and
sent in the book's order.
"""

from __future__ import annotations

import re
from pathlib import Path

from storylang.diagnostics import OneLineError

import tomllib

EXAMPLES = 3


class BookError(OneLineError):
    pass


def load(path: Path) -> list[dict]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BookError(f"prompt book {path.name} does not exist; fix [llm] book in storyc.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise BookError(f"prompt book {path.name}: {e}; fix the file (TOML)") from e
    examples = data.get("example", [])
    for i, ex in enumerate(examples, 1):
        if not isinstance(ex, dict) or not isinstance(ex.get("shot"), str) or not isinstance(ex.get("positive"), str):
            raise BookError(f'prompt book {path.name}: example {i} needs shot = "..." and positive = "..."')
        if any(not isinstance(ex.get(k, ""), str) for k in ("negative", "camera")):
            raise BookError(f"prompt book {path.name}: example {i}: negative and camera are text in quotes")
    return examples


_FUNCTION_WORDS = frozenset("the and with for from into onto over under their her his its she him they them "
                            "are was were has have had this that then than".split())


def words(text: str) -> frozenset[str]:
    return frozenset(w for w in re.findall(r"\w+", text.lower()) if len(w) >= 3 and w not in _FUNCTION_WORDS)


def closest(book: list[dict], text: str, n: int = EXAMPLES) -> list[dict]:
    """The `n` examples most like `text`, in the book's order."""
    if len(book) <= n:
        return list(book)
    mine = words(text)

    def similarity(i: int) -> tuple[float, int]:
        theirs = words(book[i]["shot"])
        union = mine | theirs
        return (len(mine & theirs) / len(union) if union else 0.0, -i)

    chosen = sorted(range(len(book)), key=similarity, reverse=True)[:n]
    return [book[i] for i in sorted(chosen)]
