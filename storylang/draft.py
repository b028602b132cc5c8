"""`storyc draft`: prose becomes a `.story` script, the writer's to edit.

The LLM answers in a validated outline (characters, scenes, shots); storylang writes the
source from it, quoting every piece of model text (its words never become syntax unquoted:
framing and camera words are reduced to plain words the front end then judges), checks it
with the real front end (`storyc check`, voices and timing included), feeds the problems
back a bounded number of times, and formats it with `storyc fmt`. Drafting is never part of
a build.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from storylang import atomic
from storylang import vocabulary as vocab
from storylang.diagnostics import Diagnostic, OneLineError
from storylang.expand.llm import Endpoint, ask, connect
from storylang.expand.request import message_env, strict_schema
from storylang.syntax.format import format_script, quote
from storylang.syntax.parse import parse_text

ROUNDS = 3  # outlines asked for after the first when the script made from one has problems
MAX_PROSE = 200_000  # characters; a longer text is drafted in parts by the writer
PARAMETERS = {"temperature": 0.4, "max_tokens": 12000}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftLine(_Strict):
    speaker: str = Field(description="a character's name, as declared")
    parenthetical: str = Field(description="how it is said, e.g. quietly; empty if nothing")
    text: str


class DraftShot(_Strict):
    framing: str = Field(description="one framing from the list")
    cast: list[str] = Field(description="names of the characters in frame")
    camera: str = Field(description="a camera move from the list and a speed, e.g. 'push in slow'; 'static'")
    seconds: float = Field(description="how long the shot lasts, 1 to 12")
    action: str = Field(description="what is seen, one sentence, present tense")
    narration: str = Field(description="narrator's words over the shot; empty if none")
    dialogue: list[DraftLine]
    transition: Literal["cut", "dissolve", "fade"] = Field(description="into the next shot")


class DraftScene(_Strict):
    interior: Literal["INT", "EXT", "INT/EXT", "EST"]
    place: str
    time: str = Field(description="DAY, NIGHT, DUSK, DAWN, ...")
    setting: str = Field(description="what the place looks like, for the pictures")
    lighting: str
    mood: str
    music: str = Field(description="the music the scene wants, in words; empty for none")
    music_file: str = Field(description="one of the music files offered that fits the scene; empty for none")
    shots: list[DraftShot]


class DraftCharacter(_Strict):
    name: str = Field(description="in capitals, as the dialogue names them")
    look: str = Field(description="age, hair, clothes: what every picture of them must show")
    voice: Literal["female", "male"]
    age: Literal["child", "adult", "old"]


class Outline(_Strict):
    title: str
    author: str
    language: str = Field(description="the language of the words spoken: an espeak-ng voice such as en-us, "
                                      "en-gb, fr, de, es, it, pt, nl")
    style: str = Field(description="the look of every picture, e.g. 'watercolor illustration, muted palette'")
    narrator: Literal["female", "male"]
    characters: list[DraftCharacter]
    scenes: list[DraftScene]


# (espeak-ng variant, words per minute, pitch) by voice and age
VOICES = {("female", "child"): ("+f4", 170, 75), ("female", "adult"): ("+f3", 160, 50),
          ("female", "old"): ("+f2", 145, 40), ("male", "child"): ("+m4", 170, 70),
          ("male", "adult"): ("+m3", 160, 45), ("male", "old"): ("+m1", 140, 30)}
TRANSITIONS = {"cut": None, "dissolve": "> dissolve 0.5s", "fade": "> fade 1s"}


class DraftError(OneLineError):
    pass


@dataclass
class Drafted:
    text: str
    rounds: int  # outlines asked for
    outline: Outline
    warnings: list[Diagnostic]


def name_of(text: str) -> str:
    """A character's name as the language spells names: capitals, digits, ' - _ and spaces."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()
    words = [re.sub(r"[^A-Z0-9_'\-]", "", w) for w in plain.split()]
    words = [w for w in words if w and w[0].isalpha()]
    return " ".join(words)


def plain_words(text: str) -> str:
    """Model text reduced to the plain words a framing or camera line is made of."""
    return " ".join(re.findall(r"[a-z][a-z\-']*|\d+(?:\.\d+)?(?:%|deg|s)?", text.lower()))


def one_line(text: str) -> str:
    return " ".join(str(text).split())


MUSIC_SUFFIXES = (".ogg", ".mp3", ".wav", ".flac", ".m4a", ".opus")


def music_files(folder: Path | None, output: Path) -> list[str]:
    """The music a draft may cue: audio files in `folder`, named relative to the script's folder."""
    if folder is None:
        return []
    if not folder.is_dir():
        raise DraftError(f"{folder}: no such folder of music")
    found = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MUSIC_SUFFIXES)
    return [Path(os.path.relpath(p.resolve(), output.resolve().parent)).as_posix() for p in found]


def write_story(o: Outline, style: str | None, source_name: str, model: str, music: list[str] = ()) -> str:
    """The `.story` source of an outline; a scene's music is a cue when it names one of `music`, else a note."""
    names = {c.name: name_of(c.name) or f"CHARACTER {i}" for i, c in enumerate(o.characters, 1)}
    lang = one_line(o.language) or "en-us"
    out = [f"// Drafted by storyc draft from {source_name} ({one_line(model)}): yours to edit.",
           f"title {quote(one_line(o.title))}"]
    if o.author.strip():
        out.append(f"author {quote(one_line(o.author))}")
    out.append(f"style {quote(one_line(style or o.style))}")
    variant, rate, pitch = VOICES[(o.narrator, "adult")]
    out.append(f"narrator {quote(lang + variant)} rate {rate}")
    for c in o.characters:
        variant, rate, pitch = VOICES[(c.voice, c.age)]
        out += ["", f"character {names[c.name]}", f"  look {quote(one_line(c.look))}",
                f"  voice {quote(lang + variant)} rate {rate} pitch {pitch}"]
    out += ["", "> fade from black 1s"]
    number = 0
    for scene in o.scenes:
        place = one_line(scene.place).upper().replace(" - ", " ")
        out += ["", f"{scene.interior}. {place} - {one_line(scene.time).upper()}"]
        for key in ("setting", "lighting", "mood"):
            if getattr(scene, key).strip():
                out.append(f"  {key} {quote(one_line(getattr(scene, key)))}")
        if scene.music_file in music:
            out.append(f"  music {quote(scene.music_file)} volume -14dB fade in 2s fade out 2s")
        elif scene.music.strip():
            out.append(f"  note {quote('music: ' + one_line(scene.music))}")
        for shot in scene.shots:
            number += 1
            out += [""] + _shot_lines(shot, number, names)
    out += ["", "> fade to black 1s", ""]
    return "\n".join(out)


def _shot_lines(shot: DraftShot, number: int, names: dict[str, str]) -> list[str]:
    cast = [names.get(n, name_of(n)) for n in shot.cast]
    cast = [n for n in cast if n]
    header = f"  shot {number} {plain_words(shot.framing) or vocab.DEFAULT_FRAMING}"
    if cast:
        header += " on " + " and ".join(cast)
    seconds = round(max(shot.seconds, 0.0), 2)
    lines = [header + f" {seconds:g}s"]
    camera = plain_words(shot.camera)
    if camera and camera != "static":
        lines.append(f"    camera {camera}")
    if shot.action.strip():
        lines.append(f"    action {quote(one_line(shot.action))}")
    if shot.narration.strip():
        lines.append(f"    narrate {quote(one_line(shot.narration))}")
    for line in shot.dialogue:
        speaker = names.get(line.speaker, name_of(line.speaker)) or "NOBODY"
        how = one_line(line.parenthetical).strip("()").replace(")", "").replace("(", "")
        lines.append(f"    {speaker}{f' ({how})' if how else ''}: {one_line(line.text)}")
    if TRANSITIONS[shot.transition]:
        lines.append(f"  {TRANSITIONS[shot.transition]}")
    return lines


def request_body(env, ep: Endpoint, prose: str, shots: int | None, style: str | None, music: list[str] = ()) -> dict:
    system = env.get_template("llm/draft.system.j2").render(
        schema=json.dumps(strict_schema(Outline.model_json_schema())), framings=sorted(vocab.FRAMINGS),
        moves=vocab.CAMERA_MOVE_NAMES, speeds=sorted(set(vocab.SPEEDS.values())), music=list(music))
    user = env.get_template("llm/draft.user.j2").render(prose=prose, shots=shots, style=style)
    return {"model": ep.model, "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
            **PARAMETERS, "response_format": {"type": "json_schema", "json_schema": {
                "name": "film_outline", "schema": strict_schema(Outline.model_json_schema()), "strict": True}}}


def problems_text(diags: list[Diagnostic], text: str) -> str:
    """The front end's errors, in words a model can act on: message, hint and the line written."""
    lines = text.splitlines()
    out = []
    for d in diags:
        if d.severity != "error":
            continue
        at = lines[d.span.line - 1].strip() if d.span and 0 < d.span.line <= len(lines) else ""
        out.append(f"- {d.message}" + (f" ({d.hint})" if d.hint else "") + (f"; the line reads: {at}" if at else ""))
    return "\n".join(out)


def draft(prose_file: Path, output: Path, ep: Endpoint, shots: int | None = None, style: str | None = None,
          check=None, progress=None, music_dir: Path | None = None) -> Drafted:
    """Ask for an outline, write the script, check it, ask again with its problems (ROUNDS times at most).

    `check(path) -> list[Diagnostic]` is the front end (storyc check's); the script is checked
    beside `output`, so paths and the build cache are where the writer's build will look."""
    prose = _read_prose(prose_file)
    music = music_files(music_dir, output)
    env = message_env(output.resolve().parent / "templates")
    client = connect(ep)
    body = request_body(env, ep, prose, shots, style, music)
    rounds = 0
    while True:
        rounds += 1
        if progress:
            progress.row("draft", f"asking {ep.model} (round {rounds})")
        answer = ask(client, ep, body, Outline, f"the outline of {prose_file.name}")
        if progress:
            progress.row("draft", None)
        outline = answer.value
        if not outline.scenes or not any(s.shots for s in outline.scenes):
            problems = "- the outline has no shots"
            diags = []
        else:
            text = write_story(outline, style, prose_file.name, answer.model, music)
            diags, text = _checked(text, output, check)
            problems = problems_text(diags, text)
            if not problems:
                return Drafted(text=text, rounds=rounds, outline=outline,
                               warnings=[d for d in diags if d.severity != "error"])
        if rounds > ROUNDS:
            raise DraftError(f"the model's outline still has problems after {rounds} tries; the first: "
                             + problems.splitlines()[0].removeprefix("- "))
        body = dict(body, messages=body["messages"] + [
            {"role": "assistant", "content": answer.raw},
            {"role": "user", "content": "The script made from that outline has these problems:\n" + problems
                                        + "\nAnswer with the whole outline again, corrected, as one JSON object."}])


def _read_prose(path: Path) -> str:
    try:
        prose = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DraftError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise DraftError(f"{path}: not UTF-8 text (byte {e.start}); save it as UTF-8") from None
    if not prose.strip():
        raise DraftError(f"{path}: the text is empty; write the story first")
    if len(prose) > MAX_PROSE:
        raise DraftError(f"{path}: {len(prose):,} characters is more than one draft takes ({MAX_PROSE:,}); "
                         "draft it a chapter at a time")
    return prose


def _checked(text: str, output: Path, check) -> tuple[list[Diagnostic], str]:
    """Format the script (as `storyc fmt` does), then check it where it will live."""
    tree, diags = parse_text(text, output.name)
    if tree is None or any(d.severity == "error" for d in diags):
        return diags, text
    text = format_script(tree, text)
    probe = output.with_name(f".{output.stem}.draft-{os.getpid()}.story")
    try:
        atomic.write_text(probe, text)
        return check(probe), text
    finally:
        probe.unlink(missing_ok=True)

