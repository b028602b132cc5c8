"""The edit list: every clip, sound and subtitle of the film on one integer-frame timeline.

`build_timeline` places the rendered shots and spoken lines; `timeline.json` is its
deterministic JSON form (documented in docs/timeline.md), and SRT/WebVTT sidecars are
written from it. Everything here counts frames at the film's rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from storylang import film as f
from storylang.cache import canonical_json
from storylang.diagnostics import StoryError, inert
from storylang.render import END_CARD, TITLE_CARD, Overlay, ShotPicture  # noqa: F401 (part of the edit list's vocabulary)
from storylang.timing import Timing, line_key, time_film

FORMAT_VERSION = 2


class Model(f.Model):
    pass


class Clip(Model):
    shot: str
    scene: int
    start: int
    frames: int
    source: Literal["still", "keyframes", "video"]
    files: tuple[str, ...]  # relative to the film root
    source_in: int = 0  # for video: first frame used, at the film's rate
    camera: tuple[f.CameraMove, ...] = ()
    seed: int = 0
    transition: f.Transition | None = None  # into the next clip
    extended: int = 0  # frames added so the shot's speech fits
    overlays: tuple[Overlay, ...] = ()  # words that stay in place while the camera moves the picture


class Speech(Model):
    shot: str
    speaker: str | None
    text: str
    file: str
    start: int
    frames: int


class Music(Model):
    file: str
    start: int
    end: int
    volume_db: float
    fade_in: int
    fade_out: int
    duck_db: float


class Subtitle(Model):
    start: int
    end: int
    text: str


class Chapter(Model):
    title: str
    start: int
    end: int


class Timeline(Model):
    version: int = FORMAT_VERSION
    title: str
    author: str
    width: int
    height: int
    fps_num: int
    fps_den: int
    frames: int
    fade_in: int = 0
    fade_out: int = 0
    clips: tuple[Clip, ...]
    speech: tuple[Speech, ...] = ()
    music: tuple[Music, ...] = ()
    subtitles: tuple[Subtitle, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    script_digest: str = ""

    @property
    def fps(self) -> Fraction:
        return Fraction(self.fps_num, self.fps_den)

    def seconds(self, frames: int) -> Fraction:
        return Fraction(frames) / self.fps

    def to_json(self) -> str:
        import json

        return json.dumps(json.loads(canonical_json(self.model_dump(mode="json"))), indent=2, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class SpokenLine:
    file: str  # relative to the film root
    seconds: float


def build_timeline(film: f.Film, pictures: dict[str, ShotPicture], spoken: dict[str, SpokenLine],
                   script_digest: str = "", timing: Timing | None = None) -> tuple[Timeline, list[str]]:
    """Place shots and lines. Returns the timeline and notes (e.g. shots lengthened for speech).

    `timing` is the film's timing decision (made from `spoken` when not given). Raises
    StoryError when a shot's speech does not fit and the script says `overrun error`.
    """
    timing = timing or time_film(film, {k: s.seconds for k, s in spoken.items()})
    if timing.errors:
        raise StoryError(list(timing.errors))
    clips: list[Clip] = []
    speech: list[Speech] = []
    if film.title_frames:
        clips.append(_card_clip(TITLE_CARD, 0, 0, film.title_frames, pictures))
    start = film.title_frames
    prev: Clip | None = clips[-1] if clips else None
    for shot in film.shots:
        if prev is not None:
            start = prev.start + prev.frames - (prev.transition.frames if prev.transition else 0)
        st = timing.shots[shot.id]
        src = pictures[shot.id]
        clip = Clip(shot=shot.id, scene=shot.scene, start=start, frames=st.frames, source=src.kind, files=src.files,
                    source_in=src.source_in, camera=shot.camera, seed=shot.render.seed, transition=shot.transition,
                    extended=st.extended, overlays=src.overlays)
        clips.append(clip)
        for i, (line, (at, length)) in enumerate(zip(shot.lines, st.lines)):
            speech.append(Speech(shot=shot.id, speaker=line.speaker, text=line.text, file=spoken[line_key(shot, i)].file,
                                 start=start + at, frames=length))
        prev = clip
    if film.end_frames:
        end = prev.start + prev.frames - (prev.transition.frames if prev.transition else 0)
        clips.append(_card_clip(END_CARD, prev.scene, end, film.end_frames, pictures))
    notes = list(timing.notes)
    total = (clips[-1].start + clips[-1].frames) if clips else 0

    subtitles = tuple(
        Subtitle(start=s.start, end=min(s.start + s.frames, total), text=f"{s.speaker}: {s.text}" if s.speaker else s.text)
        for s in speech
    )
    # scenes: chapters and music cues start at a scene's first clip
    scene_start: dict[int, int] = {}
    for c in clips:
        scene_start.setdefault(c.scene, c.start)
    ordered = sorted(scene_start.items())
    chapters = []
    for i, (index, s) in enumerate(ordered):
        end = ordered[i + 1][1] if i + 1 < len(ordered) else total
        chapters.append(Chapter(title=film.scenes[index].heading, start=s, end=end))
    music = []
    cues = [(s, film.scenes[i]) for i, s in ordered if film.scenes[i].music or film.scenes[i].music_off]
    for i, (s, scene) in enumerate(cues):
        if not scene.music or not scene.music.file:
            continue  # music off, or generated music not rendered (and no fallback): it still ends the cue before
        end = cues[i + 1][0] if i + 1 < len(cues) else total
        m = scene.music
        music.append(Music(file=m.file, start=s, end=end, volume_db=m.volume_db, fade_in=m.fade_in,
                           fade_out=m.fade_out, duck_db=m.duck_db))
    timeline = Timeline(
        title=film.title, author=film.author, width=film.width, height=film.height, fps_num=film.fps_num,
        fps_den=film.fps_den, frames=total, fade_in=film.fade_in, fade_out=film.fade_out, clips=tuple(clips),
        speech=tuple(speech), music=tuple(music), subtitles=subtitles, chapters=tuple(chapters),
        script_digest=script_digest,
    )
    return timeline, notes


def _card_clip(card: str, scene: int, start: int, frames: int, pictures: dict[str, ShotPicture]) -> Clip:
    src = pictures[card]
    return Clip(shot=card, scene=scene, start=start, frames=frames, source=src.kind, files=src.files)


def _timecode(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _ms(t: Timeline, frames: int) -> int:
    return round(t.seconds(frames) * 1000)


def _cue_text(text: str) -> str:
    """A cue's words on their lines, with no blank line (it would end the cue) and no live control character."""
    return "\n".join(inert(line) for line in text.split("\n") if line.strip())


def to_srt(t: Timeline) -> str:
    out = []
    for i, s in enumerate(t.subtitles, 1):
        out.append(f"{i}\n{_timecode(_ms(t, s.start), ',')} --> {_timecode(_ms(t, s.end), ',')}\n{_cue_text(s.text)}\n")
    return "\n".join(out)


def to_vtt(t: Timeline) -> str:
    out = ["WEBVTT", ""]
    for s in t.subtitles:
        text = _cue_text(s.text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out.append(f"{_timecode(_ms(t, s.start), '.')} --> {_timecode(_ms(t, s.end), '.')}\n{text}\n")
    return "\n".join(out)
