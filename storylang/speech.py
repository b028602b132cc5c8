"""Narration and dialogue to WAV, offline, with espeak-ng through pyttsx3's binding.

The espeak-ng library and its data come from the espeakng-loader package (no system
package needed). This process only lists and checks voices; every line is spoken by a
process of its own (speak_worker.py says why): the same text and voice always give the
same bytes, and lines spoken in parallel share no settings.

A spoken line is cached under the digest of its text, voice, engine and this stage's
version, with a record of what espeak-ng reported it used. A cached WAV is trusted only
when its record matches what is asked now and its length matches the record.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import subprocess
import sys
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

from storylang import atomic, waiting
from storylang.cache import Cache, digest
from storylang.diagnostics import Diagnostic, OneLineError, StoryError, did_you_mean
from storylang.direction import directed
from storylang.film import Film, Voice, Where, line_key

# speech-1 WAVs were spoken by one shared engine and could carry another line's rate.
STAGE_VERSION = "speech-2"
WORKER_TIMEOUT = 120  # seconds for one line; espeak-ng speaks a 5-minute text in under 2 s


class SpeechError(OneLineError):
    pass


@dataclass(frozen=True)
class VoiceInfo:
    id: str  # what a script writes: "en-us"
    name: str
    languages: tuple[str, ...]


def _load_espeak() -> str:
    """Make libespeak-ng loadable; returns where it came from."""
    try:
        import espeakng_loader
    except ImportError:
        return "system libespeak-ng"
    # Without ESPEAK_DATA_PATH espeak-ng exits the whole process, so set it first.
    os.environ.setdefault("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
    ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    return "espeakng-loader"


class SpeechEngine:
    """Knows espeak-ng's voices and speaks lines, each in a fresh worker process."""

    def __init__(self) -> None:
        self.origin = _load_espeak()
        try:
            from pyttsx3.drivers import _espeak
        except Exception as e:  # pragma: no cover - depends on the machine
            raise SpeechError(f"the voice engine could not start ({e}); run `storyc doctor`") from e
        self._espeak = _espeak
        if _espeak.Initialize(_espeak.AUDIO_OUTPUT_SYNCHRONOUS, 1000) == -1:  # pragma: no cover
            raise SpeechError("the voice engine could not start; run `storyc doctor`")
        info = _espeak.Info()
        self.version = info.decode() if isinstance(info, bytes) else str(info)
        self._voices: list[VoiceInfo] | None = None
        self._lock = threading.Lock()
        data = os.environ.get("ESPEAK_DATA_PATH")
        variants_dir = Path(data) / "voices" / "!v" if data else None
        self.variants = sorted(p.name for p in variants_dir.iterdir()) if variants_dir and variants_dir.is_dir() else []

    @property
    def name(self) -> str:
        return f"espeak-ng {self.version}"

    def voices(self) -> list[VoiceInfo]:
        with self._lock:  # espeak-ng's voice list is a static buffer: one reader at a time
            return self._list_voices()

    def _list_voices(self) -> list[VoiceInfo]:
        if self._voices is None:
            out = []
            for v in self._espeak.ListVoices(None):
                vid = v.identifier.decode("utf-8").lower().split("/")[-1]
                # espeak-ng's languages field: a priority byte, then the language name
                lang = v.languages[1:].decode("utf-8", "ignore") if v.languages else ""
                out.append(VoiceInfo(id=vid, name=v.name.decode("utf-8"), languages=(lang,) if lang else ()))
            self._voices = sorted(out, key=lambda x: x.id)
        return self._voices

    def resolve_voice(self, spec: str) -> str | None:
        """The espeak-ng voice for `base[+variant]`; base is a voice id, a voice name or a language."""
        base, _, variant = spec.partition("+")
        found = next((v.id for v in self.voices() if base in (v.id, v.name)), None)
        if found is None:
            found = next((v.id for v in self.voices() if base.lower() in (x.lower() for x in v.languages)), None)
        if found is None:
            return None
        return f"{found}+{variant}" if variant else found

    def check_voice(self, spec: str) -> str | None:
        """None if espeak-ng knows the voice `base[+variant]`, else a message with a suggestion."""
        base, _, variant = spec.partition("+")
        if self.resolve_voice(base) is None:
            guess = did_you_mean(base, {v.id for v in self.voices()})
            return f'unknown voice "{base}"' + (f'; did you mean "{guess}"?' if guess else "; see `storyc voices`")
        if variant and self.variants and variant not in self.variants:
            guess = did_you_mean(variant, self.variants)
            return f'unknown voice variant "+{variant}"' + (f'; did you mean "+{guess}"?' if guess else "")
        return None

    def synthesize(self, text: str, voice: Voice, target: Path) -> dict:
        """Speak `text` into a WAV at `target` (atomically); returns what espeak-ng used."""
        problem = self.check_voice(voice.id)
        if problem:
            raise SpeechError(problem)
        with atomic.atomic_path(target, suffix=".wav") as tmp:
            request = {"text": text, "voice": self.resolve_voice(voice.id), "rate": voice.rate,
                       "pitch": voice.pitch, "wav": str(tmp)}
            used = _run_worker(request)
            if used.get("rate") != voice.rate or used.get("pitch") != voice.pitch:
                raise SpeechError(f"the voice engine spoke at rate {used.get('rate')}, pitch {used.get('pitch')} "
                                  f"instead of rate {voice.rate}, pitch {voice.pitch}")
            if wav_samples(tmp) != used.get("samples") or not used.get("samples"):
                raise SpeechError(f"the voice engine produced no audio for: {text[:60]}")
        return used


def _run_worker(request: dict) -> dict:
    args = [sys.executable, "-I", "-m", "storylang.speak_worker"]
    try:
        proc = subprocess.run(args, input=json.dumps(request), capture_output=True, text=True,
                              timeout=WORKER_TIMEOUT, env=_worker_env())
    except subprocess.TimeoutExpired as e:
        raise SpeechError(f"the voice engine took over {WORKER_TIMEOUT}s for one line") from e
    last = (proc.stdout.strip().splitlines() or ["{}"])[-1]
    try:
        answer = json.loads(last)
    except ValueError:
        answer = {}
    if proc.returncode != 0 or "error" in answer or not answer:
        why = answer.get("error") or (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise SpeechError(f"the voice engine failed: {why}; run `storyc doctor`")
    return answer


def _worker_env() -> dict[str, str]:
    # -I ignores PYTHONPATH, so hand the worker the import path this process uses.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def wav_samples(path: Path) -> int:
    """The samples a WAV really holds (its header's count only if the data is all there)."""
    try:
        with wave.open(str(path), "rb") as w:
            n = w.getnframes()
            return n if len(w.readframes(n)) == n * w.getsampwidth() * w.getnchannels() else 0
    except (wave.Error, EOFError, OSError):
        return 0


def wav_duration(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError):
        return 0.0


# ---------------------------------------------------------------------------- the speech stage


@dataclass(frozen=True)
class SpeechJob:
    """One line to be spoken, or found in the cache."""

    text: str
    voice: Voice
    inputs: dict  # the canonical inputs its key is made of
    path: Path
    direction: str = ""  # the parenthetical, for a server that takes instructions

    @property
    def record(self) -> Path:
        return self.path.with_suffix(".json")


class SpeechStage:
    """Speech lines: their keys, the trust check on cached WAVs, and parallel synthesis."""

    version = STAGE_VERSION

    def __init__(self, engine: SpeechEngine, cache: Cache, server=None):
        self.engine = engine
        self.cache = cache
        self.server = server  # tts.TtsSettings: where `engine openai` voices are spoken (None: not asked for)

    def inputs(self, text: str, voice: Voice, direction: str = "") -> dict:
        dumped = voice.model_dump(exclude={"engine"})
        if voice.engine == "espeak":  # espeak-ng lines keep the keys they had before engines existed
            return {"stage": self.version, "engine": self.engine.name, "text": text, "voice": dumped}
        server = self.server
        inputs = {"stage": self.version, "engine": voice.engine, "text": text, "voice": dumped,
                  "server": server.shown if server else "", "model": server.model if server else "",
                  "format": server.format if server else ""}
        if direction and server and server.instructions:  # undirected lines keep their keys
            inputs["direction"] = direction
        return inputs

    def job(self, text: str, voice: Voice, direction: str | None = None) -> SpeechJob:
        inputs = self.inputs(text, voice, direction or "")
        return SpeechJob(text=text, voice=voice, inputs=inputs, path=self.cache.path("speech", digest(inputs), ".wav"),
                         direction=inputs.get("direction", ""))

    def is_done(self, job: SpeechJob) -> bool:
        """A cached WAV counts only if its record says it was spoken as asked, and it is whole."""
        try:
            record = json.loads(job.record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        used = record.get("used", {})
        return (record.get("inputs") == job.inputs and used.get("rate") == job.voice.rate
                and used.get("pitch") == job.voice.pitch and wav_samples(job.path) == used.get("samples"))

    def answer(self, job: SpeechJob) -> str | None:
        """The SHA-256 of what a server answered for this line, as its cache record keeps it."""
        try:
            return json.loads(job.record.read_text(encoding="utf-8")).get("used", {}).get("answer_sha256")
        except (OSError, ValueError, AttributeError):
            return None

    def speak(self, job: SpeechJob) -> None:
        used = self.synthesize(job)
        atomic.write_text(job.record, json.dumps({"inputs": job.inputs, "used": used}, sort_keys=True,
                                                 ensure_ascii=False, indent=1) + "\n")

    def synthesize(self, job: SpeechJob) -> dict:
        """The line spoken by its voice's engine into job.path; what was used (rate, pitch, samples)."""
        if job.voice.engine == "espeak":
            return self.engine.synthesize(job.text, job.voice, job.path)
        from storylang import tts
        from storylang.toolchain import find_ffmpeg

        if self.server is None:
            raise SpeechError(f"no speech server for voice {job.voice.id!r} (engine {job.voice.engine})")
        try:
            used = tts.speak(job.text, job.voice.id, job.path, self.server, find_ffmpeg().path, job.direction)
        except tts.TtsError as e:
            raise SpeechError(str(e)) from e
        samples = wav_samples(job.path)
        if not samples:
            job.path.unlink(missing_ok=True)
            raise SpeechError(f"{self.server.shown} returned no audio for: {job.text[:60]}")
        # rate and pitch are espeak-ng's: recorded as asked, so the cache check reads them alike
        return {**used, "samples": samples, "rate": job.voice.rate, "pitch": job.voice.pitch}

    def speak_all(self, jobs: list[SpeechJob], workers: int, on_done=None) -> None:
        """Speak every job, `workers` at a time; raises the first failure (no new line starts after it)."""
        work: queue.Queue = queue.Queue()
        for job in jobs:
            work.put(job)
        done: queue.Queue = queue.Queue()
        stop = threading.Event()

        def worker() -> None:
            while not stop.is_set():
                try:
                    job = work.get_nowait()
                except queue.Empty:
                    return
                try:
                    self.speak(job)
                    done.put((job, None))
                except BaseException as e:  # noqa: BLE001 - handed to the main thread, which raises it
                    done.put((job, e))

        # daemon threads: Ctrl-C ends the build at once, even while a server is still answering
        # (a line is renamed into the cache only once it is whole, so nothing half-spoken is kept)
        for _ in range(min(max(workers, 1), len(jobs))):
            threading.Thread(target=worker, daemon=True).start()
        try:
            for _ in jobs:
                job, error = waiting.get(done)
                if isinstance(error, SpeechError):
                    error.job = job  # so the caller can name the line
                if error is not None:
                    raise error
                if on_done:
                    on_done(job)
        finally:
            stop.set()


_ENGINE: SpeechEngine | None = None


def engine() -> SpeechEngine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = SpeechEngine()
    return _ENGINE


class FilmSpeech:
    """Every line of one film as speech jobs: what is cached, what must be spoken, for how long."""

    def __init__(self, film: Film, stage: SpeechStage):
        self.stage = stage
        self.jobs: dict[str, SpeechJob] = {}
        self.lines = {}  # line key → the film's Line
        self.pins: dict[Path, str] = {}  # a server line's WAV → the answer the lock pins (speechlock.py)
        self._where: dict[Path, Where] = {}
        for shot in film.shots:
            for i, line in enumerate(shot.lines):
                job = stage.job(line.text, line.voice, line.parenthetical)
                self.jobs[line_key(shot, i)] = job
                self.lines[line_key(shot, i)] = line
                self._where.setdefault(job.path, line.where)

    def where(self, key: str) -> Where:
        return self.lines[key].where

    def speaker(self, key: str) -> str | None:
        return self.lines[key].speaker

    def missing(self) -> list[SpeechJob]:
        """The lines not yet spoken (each text and voice once); a server's line counts as spoken only
        when what it answered is what the lock pins."""
        unique = {job.path: job for job in self.jobs.values()}
        return [job for job in unique.values() if not self.stage.is_done(job)
                or (job.path in self.pins and self.stage.answer(job) != self.pins[job.path])]

    def speak(self, jobs: list[SpeechJob], workers: int, on_done=None) -> None:
        """Speak `jobs`; a failure is a StoryError at the line that could not be spoken."""
        try:
            self.stage.speak_all(jobs, workers, on_done)
        except SpeechError as e:
            raise StoryError([line_diagnostic(self._where[e.job.path], "speech", str(e))]) from e

    def seconds(self) -> dict[str, float]:
        return {key: wav_duration(job.path) for key, job in self.jobs.items()}


def offline(film: Film) -> Film:
    """The film with every line a server would speak given to espeak-ng's default voice instead (at
    the voice's rate and pitch): `--voices espeak`, and what check and a dry run time lines with."""
    def local(line) -> Voice:
        if line.voice.engine == "espeak":
            return line.voice
        return directed(line.voice.model_copy(update={"engine": "espeak", "id": "en-us"}), line.parenthetical)

    if all(line.voice.engine == "espeak" for shot in film.shots for line in shot.lines):
        return film
    shots = tuple(shot.model_copy(update={"lines": tuple(line.model_copy(update={"voice": local(line)})
                                                         for line in shot.lines)}) for shot in film.shots)
    return film.model_copy(update={"shots": shots})


def line_diagnostic(w: Where, code: str, message: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(severity="error", code=code, file=w.file, message=message, hint=hint,
                      span=w.span())


def voice_errors(film: Film, engine: SpeechEngine) -> list[Diagnostic]:
    """One error for each voice espeak-ng does not have, at the statement that names it (else at the
    first line that uses it)."""
    errors, seen = [], set()
    for shot in film.shots:
        for line in shot.lines:
            if line.voice.id in seen or line.voice.engine != "espeak":
                continue  # a server's voices are its own: it says when it has none of that name
            seen.add(line.voice.id)
            problem = engine.check_voice(line.voice.id)
            if problem:
                errors.append(line_diagnostic(line.voice.where or line.where, "unknown-voice",
                                              f"{line.speaker or 'the narrator'} cannot speak: {problem}",
                                              "`storyc voices` lists the voices; variants are written en-us+f3"))
    return errors


def speak_film(film: Film, cache: Cache, workers: int, on_done=None) -> FilmSpeech:
    """Every line of `film` spoken or found in `cache`; raises StoryError for unknown voices or failures."""
    stage = SpeechStage(engine(), cache)
    errors = voice_errors(film, stage.engine)
    if errors:
        raise StoryError(errors)
    speech = FilmSpeech(film, stage)
    speech.speak(speech.missing(), workers, on_done)
    return speech
