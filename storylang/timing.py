"""The one timing decision: how long each shot lasts once its lines have been spoken.

Speech is synthesised (or found in the cache) first; then every shot's final frame count
is fixed here, by one rule, and every later consumer reads it: the edit list, the graphs,
subtitles, chapters, `storyc check` and `--dry-run`. Lines are placed on whole frames:
a lead-in before the first, a gap between lines, a tail after the last. A shot whose
speech does not fit is lengthened (`overrun extend`, the default) or is an error
(`overrun error`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from storylang.diagnostics import Diagnostic
from storylang.film import Film, Shot, line_key

LEAD_IN = Fraction(1, 4)  # seconds before a shot's first line
GAP = Fraction(1, 4)  # seconds between lines
TAIL = Fraction(1, 4)  # seconds after a shot's last line before the next shot


@dataclass(frozen=True)
class ShotTiming:
    frames: int  # the shot's final length
    extended: int  # frames added so its speech fits
    lines: tuple[tuple[int, int], ...]  # (offset into the shot, length) of each line, in frames


@dataclass(frozen=True)
class Timing:
    shots: dict[str, ShotTiming]
    frames: int  # the film's length: title card, the shots minus their transitions' overlaps, end card
    notes: tuple[str, ...]
    errors: tuple[Diagnostic, ...]  # speech that does not fit under `overrun error`
    warnings: tuple[Diagnostic, ...]  # shots lengthened for their speech


def frames_ceil(seconds: Fraction, fps: Fraction) -> int:
    return math.ceil(seconds * fps)


def time_shot(shot: Shot, seconds: list[float], fps: Fraction) -> tuple[ShotTiming, int]:
    """A shot's timing from its lines' spoken seconds; also the frames its speech needs."""
    offset = frames_ceil(LEAD_IN, fps) if seconds else 0
    placed = []
    for s in seconds:
        length = max(frames_ceil(Fraction(s), fps), 1)
        placed.append((offset, length))
        offset += length + frames_ceil(GAP, fps)
    needed = (placed[-1][0] + placed[-1][1] + frames_ceil(TAIL, fps)) if placed else 0
    extended = max(needed - shot.frames, 0) if shot.overrun == "extend" else 0
    return ShotTiming(frames=shot.frames + extended, extended=extended, lines=tuple(placed)), needed


def time_film(film: Film, spoken_seconds: dict[str, float]) -> Timing:
    """Every shot's final length, given each line's spoken length (keyed by `line_key`)."""
    fps = film.fps
    shots: dict[str, ShotTiming] = {}
    notes: list[str] = []
    errors: list[Diagnostic] = []
    warnings: list[Diagnostic] = []
    for shot in film.shots:
        seconds = [spoken_seconds[line_key(shot, i)] for i in range(len(shot.lines))]
        timing, needed = time_shot(shot, seconds, fps)
        shots[shot.id] = timing
        if timing.extended:
            notes.append(f"shot {shot.id} lengthened by {float(timing.extended / fps):.2f}s to fit its speech")
            warnings.append(_overrun(shot, needed, fps, "warning"))
        elif needed > shot.frames:
            errors.append(_overrun(shot, needed, fps, "error"))
    overlap = sum(s.transition.frames for s in film.shots[:-1] if s.transition)
    total = film.title_frames + sum(t.frames for t in shots.values()) - overlap + film.end_frames
    if total > MAX_FILM_SECONDS * fps:
        errors.append(_too_long(film, shots, fps))
    return Timing(shots=shots, frames=total, notes=tuple(notes), errors=tuple(errors), warnings=tuple(warnings))


MAX_FILM_SECONDS = 6 * 3600  # a longer film is a mistake (or an attack on the disk), not a film


def _too_long(film: Film, shots: dict[str, ShotTiming], fps: Fraction) -> Diagnostic:
    """The error at the shot that takes the film past MAX_FILM_SECONDS."""
    running = film.title_frames
    for shot in film.shots:
        running += shots[shot.id].frames
        if running > MAX_FILM_SECONDS * fps:
            break
    w = shot.where
    return Diagnostic(severity="error", code="film-too-long", file=w.file, span=w.span(4),
                      message=f"the film is longer than {MAX_FILM_SECONDS // 3600} hours by shot {shot.id}",
                      hint="split it into several films")


def _overrun(shot: Shot, needed: int, fps: Fraction, severity: str) -> Diagnostic:
    w = shot.where
    hint = ("lengthen the shot, shorten its lines, or set overrun extend" if severity == "error" else
            f"the build lengthens it to {float(needed / fps):.2f}s; give it that length in the script "
            "or shorten its lines")
    return Diagnostic(
        severity=severity, code="speech-overrun" if severity == "error" else "speech-too-long", file=w.file,
        span=w.span(4),
        message=f"the speech of shot {shot.id} takes {float(needed / fps):.2f}s but the shot lasts "
                f"{float(shot.frames / fps):.2f}s", hint=hint)
