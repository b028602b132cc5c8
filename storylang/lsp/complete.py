"""Completion by context, from the text before the cursor and the lines above it.

Typing leaves the script broken most of the time, so the context comes from the line itself
and its indentation (which is how the language nests), not from a parse: the nearest line
above with less indentation says where the cursor stands (the film, a character, a scene, a
shot). The words offered come from the language's own tables (keywords.py, vocabulary.py),
the film's characters, espeak-ng's voices, the project's templates, the model families and the
model files of the ComfyUI servers the user trusts (models.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storylang import vocabulary as vocab
from storylang.lsp.models import FOLDERS as MODEL_KEYS
from storylang.syntax import keywords

HEADING = re.compile(r"(INT\./EXT\.|INT\.|EXT\.|I/E|EST\.)\s", re.IGNORECASE)


@dataclass(frozen=True)
class Item:
    label: str
    kind: str  # "keyword", "character", "value", "voice", "template", "snippet", "model"
    detail: str = ""
    insert: str | None = None  # text to insert when it differs from the label


def place_of(lines: list[str], line: int) -> str:
    """Where line `line` (from 0) stands: "film", "character", "scene" or "shot"."""
    indent = _indent(lines[line]) if line < len(lines) and lines[line].strip() else None
    for above in range(line - 1, -1, -1):
        text = lines[above]
        if not text.strip() or text.lstrip().startswith("//"):
            continue
        ind = _indent(text)
        if indent is not None and ind >= indent:
            continue
        word = text.strip().split()[0].lower()
        if word == "character":
            return "character"
        if HEADING.match(text.strip() + " "):
            return "scene"
        if word == "shot":
            return "shot"
        if indent is None:
            indent = ind  # a blank line: the first line above sets the level
            continue
        return "film" if ind == 0 else place_of(lines, above)
    return "film"


def complete(prefix: str, lines: list[str], line: int, characters: list[str], root: Path,
             server_files: Callable[[str], list] | None = None) -> list[Item]:
    """What may be written at the end of `prefix` (the line up to the cursor). `server_files`:
    a statement → the model files its servers have for it (models.py), never waiting."""
    stripped = prefix.lstrip()
    words = stripped.split()
    at_word_start = not words or (len(words) == 1 and not prefix.endswith(" "))
    if stripped.startswith(">"):
        return [Item(w, "value", "transition") for w in sorted(vocab.TRANSITIONS)]
    if at_word_start:
        return _statements(place_of(lines, line), characters)
    key = words[0].lower()
    quoted = prefix.count('"') % 2 == 1
    if key in ("voice", "narrator") and quoted:
        return _voices(prefix[prefix.rfind('"') + 1:])
    if key == "template":
        return _templates(root)
    if quoted and server_files is not None and key in MODEL_KEYS:
        return _server_files(server_files(key))
    if key == "camera":
        return _camera(words[1:], prefix.endswith(" "))
    if key == "shot":
        return _shot_words(words, characters)
    if key in ("model", "start") and not quoted and '"' in prefix and prefix.endswith(" "):
        return _families(root)  # `model "file" FAMILY`: where the file's name cannot tell it
    return []


def _server_files(files: list) -> list[Item]:
    from storylang.comfy.schema import FOLDER_WORDS

    where: dict[str, list[str]] = {}
    for f in files:
        where.setdefault(f.name, []).append(f"{FOLDER_WORDS.get(f.folder, f.folder)} on {f.server}")
    return [Item(name, "model", ", ".join(dict.fromkeys(on))) for name, on in sorted(where.items())]


def _statements(place: str, characters: list[str]) -> list[Item]:
    out = [Item(k, "keyword", f"a statement of {place}") for k in sorted(keywords.allowed_in(place))]
    if place == "film":
        out.append(Item("character", "keyword", "declare a character", "character "))
        out += [Item(h, "snippet", "a scene heading", f"{h} ") for h in ("INT.", "EXT.", "INT./EXT.")]
    if place == "scene":
        out.append(Item("shot", "keyword", "a shot", "shot "))
    if place == "shot":  # a line of dialogue starts with its speaker
        out += [Item(name, "character", "a line of dialogue", f"{name}: ") for name in characters]
    return out


def _camera(after: list[str], new_word: bool) -> list[Item]:
    done = " ".join(w.lower() for w in (after if new_word else after[:-1]))
    if not done:
        return [Item(m, "value", "camera move") for m in vocab.CAMERA_MOVE_NAMES]
    return ([Item(s, "value", "speed") for s in sorted(set(vocab.SPEEDS))]
            + [Item(e, "value", "easing") for e in sorted(vocab.EASINGS)])


def _shot_words(words: list[str], characters: list[str]) -> list[Item]:
    if "on" in (w.lower() for w in words[:-1]) or (words and words[-1].lower() == "on"):
        return [Item(name, "character", "in frame") for name in characters]
    out = [Item(" ".join(p), "value", "framing") for p in sorted(vocab.FRAMING_PHRASES)]
    out += [Item(" ".join(p), "value", "angle") for p in sorted(vocab.ANGLE_PHRASES)]
    return out + [Item("on", "keyword", "who is in frame", "on ")]


def _voices(typed: str) -> list[Item]:
    """espeak-ng's voices (as `storyc voices`), or a voice's variants once a `+` is typed."""
    try:
        from storylang.speech import engine

        eng = engine()
        if "+" in typed:
            base = typed.split("+")[0]
            return [Item(f"{base}+{v}", "voice", "variant") for v in eng.variants]
        return [Item(v.id, "voice", v.name) for v in eng.voices()]
    except Exception:  # noqa: BLE001 - no voice engine here: nothing to offer, `storyc doctor` says why
        return []


def _templates(root: Path) -> list[Item]:
    from storylang.comfy.graphs import template_env, template_names

    return [Item(n, "template", "graph template") for n in template_names(template_env(root / "templates"))]


def _families(root: Path) -> list[Item]:
    from storylang.families import families

    return [Item(name, "value", fam.title) for name, fam in sorted(families(root).items())]


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))
