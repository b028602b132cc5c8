"""Lines a speech server spoke, pinned in `FILE.story.lock` beside the LLM's answers.

espeak-ng gives the same bytes for the same text and voice, so its lines need no pin. A server
may not: a new model version, another seed. The lock keeps, per line, the digest of its request
(the line's cache key) and the SHA-256 of the bytes the server answered, so that
- a cached WAV whose answer is not the pinned one is not used: the line is asked again;
- an answer that differs from the pin is reported ("the server's audio changed"), and pinned;
- `--locked` asks no server: every server line must be pinned and its pinned audio cached;
- `storyc status` says which lines would be asked again, and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from storylang.cache import digest
from storylang.diagnostics import Diagnostic
from storylang.expand import lock as lock_mod
from storylang.speech import FilmSpeech, SpeechJob, line_diagnostic


@dataclass
class Pins:
    """The lock's line entries that still match their lines, and what was found against them."""

    path: Path
    lock: lock_mod.Lock
    pinned: dict[str, lock_mod.LineEntry] = field(default_factory=dict)  # line key → entry, same request

    def audio(self, key: str) -> str | None:
        entry = self.pinned.get(key)
        return entry.audio if entry else None


def server_lines(speech: FilmSpeech) -> dict[str, SpeechJob]:
    """The lines a server speaks, by line key, in film order."""
    return {key: job for key, job in speech.jobs.items() if job.voice.engine != "espeak"}


def read(script: Path, speech: FilmSpeech) -> Pins:
    """The pins of this film's server lines; the cached WAVs that do not match them count as missing."""
    path = lock_mod.lock_path(script)
    lock = lock_mod.read(path)
    pins = Pins(path=path, lock=lock)
    for key, job in server_lines(speech).items():
        entry = lock.lines.get(key)
        if entry is not None and entry.key == digest(job.inputs):
            pins.pinned[key] = entry
    speech.pins = {speech.jobs[key].path: entry.audio for key, entry in pins.pinned.items()}
    return pins


def locked_errors(speech: FilmSpeech, pins: Pins) -> list[Diagnostic]:
    """`--locked`: one error per server line that is not pinned, or whose pinned audio is not cached."""
    errors = []
    missing = {job.path for job in speech.missing()}
    for key, job in server_lines(speech).items():
        who = _who(speech, key)
        if key not in pins.pinned:
            errors.append(line_diagnostic(speech.where(key), "unlocked-line",
                                          f"{who} is not pinned in {pins.path.name} as it is now, and --locked "
                                          "asks no speech server",
                                          "build once without --locked to pin it, or build with --voices espeak"))
        elif job.path in missing:
            errors.append(line_diagnostic(speech.where(key), "unlocked-line",
                                          f"the audio {pins.path.name} pins for {who} is not in the cache, and "
                                          "--locked asks no speech server",
                                          "build once without --locked here (the answer is checked against the "
                                          "pin), or build with --voices espeak"))
    return errors


def pin(speech: FilmSpeech, pins: Pins, root: Path, script_name: str) -> list[str]:
    """Pin what every server line was spoken with (after the build spoke them); the notes of lines
    whose audio changed. The lock is written only when it changes."""
    lines = {}
    changed = []
    for key, job in server_lines(speech).items():
        answer = speech.stage.answer(job)
        if not answer:
            continue
        before = pins.pinned.get(key)
        if before is not None and before.audio != answer:
            changed.append(f"{_at(speech, key, root)}: {_who(speech, key)}: the server's audio changed since "
                           f"{pins.path.name} pinned it ({before.audio[:12]}, now {answer[:12]}); the lock now "
                           "pins the new answer")
        info = job.inputs
        lines[key] = lock_mod.LineEntry(id=key, key=digest(info), audio=answer, where=_at(speech, key, root),
                                        voice=job.voice.id, server=info.get("server", ""),
                                        model=info.get("model", ""), format=info.get("format", ""))
    if lines != pins.lock.lines and (lines or pins.path.exists()):
        lock_mod.write(pins.path, lock_mod.Lock(entries=pins.lock.entries, lines=lines), script_name)
    return changed


def reasons(speech: FilmSpeech, pins: Pins, to_speak: list[SpeechJob], root: Path) -> dict[str, str]:
    """What a build would do with each server line it cannot take from the cache as pinned, and why."""
    todo = {job.path for job in to_speak}
    out = {}
    for key, job in server_lines(speech).items():
        at = _at(speech, key, root)
        recorded = speech.stage.answer(job)
        pinned = pins.audio(key)
        if pinned is None:
            why = "would be asked of the speech server" if job.path in todo else "would be pinned from the cache"
            out[key] = f"line {key} speech: not pinned in {pins.path.name}: {why} ({at})"
        elif recorded and recorded != pinned:
            out[key] = (f"line {key} speech: the server's audio changed ({pins.path.name} pins {pinned[:12]}, "
                        f"the cache holds {recorded[:12]}): would be asked again ({at})")
        elif job.path in todo:
            out[key] = (f"line {key} speech: not in the cache: would be asked of the speech server and checked "
                        f"against {pins.path.name} ({at})")
    return out


def _who(speech: FilmSpeech, key: str) -> str:
    speaker = speech.speaker(key)
    return f"{speaker}'s line" if speaker else "the narrator's line"


def _at(speech: FilmSpeech, key: str, root: Path) -> str:
    return lock_mod.file_line(speech.where(key), root)
