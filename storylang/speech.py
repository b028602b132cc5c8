"""Narration and dialogue to WAV, offline, with pyttsx3 over espeak-ng.

The espeak-ng library and its data come from the espeakng-loader package (no system
package needed); they are loaded before pyttsx3 so that pyttsx3 finds them.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import io
import os
import wave
from dataclasses import dataclass
from pathlib import Path

from storylang import atomic
from storylang.diagnostics import did_you_mean
from storylang.film import Voice

STAGE_VERSION = "speech-1"


class SpeechError(Exception):
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
    """One pyttsx3 engine for the process (pyttsx3 caches it anyway); not thread-safe."""

    def __init__(self) -> None:
        self.origin = _load_espeak()
        try:
            import pyttsx3
            from pyttsx3.drivers import _espeak
        except Exception as e:  # pragma: no cover - depends on the machine
            raise SpeechError(f"the voice engine could not start ({e}); run `storyc doctor`") from e
        self._espeak = _espeak
        with contextlib.redirect_stdout(io.StringIO()):
            self.engine = pyttsx3.init("espeak")
        # Let pyttsx3's driver go while the interpreter is whole; at teardown its __del__ fails loudly.
        atexit.register(self._shutdown)
        info = _espeak.Info()
        self.version = info.decode() if isinstance(info, bytes) else str(info)
        self._voices = None
        data = os.environ.get("ESPEAK_DATA_PATH")
        variants_dir = Path(data) / "voices" / "!v" if data else None
        self.variants = sorted(p.name for p in variants_dir.iterdir()) if variants_dir and variants_dir.is_dir() else []

    def _shutdown(self) -> None:
        import gc

        self.engine = None
        gc.collect()

    @property
    def name(self) -> str:
        return f"espeak-ng {self.version}"

    def voices(self) -> list[VoiceInfo]:
        if self._voices is None:
            out = []
            for v in self.engine.getProperty("voices"):
                vid = v.id.split("/")[-1]
                langs = tuple(x.decode() if isinstance(x, bytes) else str(x) for x in (v.languages or ()))
                out.append(VoiceInfo(id=vid, name=v.name, languages=langs))
            self._voices = sorted(out, key=lambda x: x.id)
        return self._voices

    def resolve_voice(self, spec: str) -> str | None:
        """The espeak-ng voice for `base[+variant]`; base is a voice id, a voice name or a language."""
        base, _, variant = spec.partition("+")
        found = None
        for v in self.voices():
            if base in (v.id, v.name):
                found = v.id
                break
        if found is None:
            found = next((v.id for v in self.voices() if base.lower() in (x.lower() for x in v.languages)), None)
        if found is None:
            return None
        return f"{found}+{variant}" if variant else found

    def check_voice(self, spec: str) -> str | None:
        """None if espeak-ng knows the voice `base[+variant]`, else a message with a suggestion."""
        base, _, variant = spec.partition("+")
        if self.resolve_voice(base) is None:
            ids = {v.id for v in self.voices()}
            guess = did_you_mean(base, ids)
            return f'unknown voice "{base}"' + (f'; did you mean "{guess}"?' if guess else "; see `storyc voices`")
        if variant and self.variants and variant not in self.variants:
            guess = did_you_mean(variant, self.variants)
            return f'unknown voice variant "+{variant}"' + (f'; did you mean "+{guess}"?' if guess else "")
        return None

    def synthesize(self, text: str, voice: Voice, target: Path) -> float:
        """Speak `text` into a WAV at `target` (atomically); returns its duration in seconds."""
        problem = self.check_voice(voice.id)
        if problem:
            raise SpeechError(problem)
        with atomic.atomic_path(target, suffix=".wav") as tmp:
            e = self.engine
            e.setProperty("voice", self.resolve_voice(voice.id))
            e.setProperty("rate", voice.rate)
            e.setProperty("pitch", voice.pitch)
            duration = 0.0
            for _attempt in range(3):
                with contextlib.redirect_stdout(io.StringIO()):
                    e.save_to_file(text, str(tmp))
                    e.runAndWait()
                # runAndWait returns before espeak has finished writing the file.
                self._espeak.Synchronize()
                duration = wav_duration(tmp)
                if duration > 0:
                    break
            if duration <= 0:
                raise SpeechError(f"the voice engine produced no audio for: {text[:60]}")
        return duration


def wav_duration(path: Path) -> float:
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError, OSError):
        return 0.0


_ENGINE: SpeechEngine | None = None


def engine() -> SpeechEngine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = SpeechEngine()
    return _ENGINE
