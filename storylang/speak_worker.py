"""Speak one line into a WAV file, in a process of its own.

espeak-ng keeps synthesis state in static variables that no call resets (pitch flutter
and waveform phase carry over from one utterance to the next, even across
espeak_Terminate/espeak_Initialize), so the same text spoken twice in one process gives
different samples. The first utterance of a fresh process is always the same, so each
line is spoken by a new process: byte-identical audio, and no settings shared between
lines that are spoken at the same time.

Reads a JSON request on stdin: {"text", "voice", "rate", "pitch", "wav"}; writes the WAV
and prints JSON with the settings espeak-ng reports it used and the sample count.
Imports nothing of storylang's so that it starts quickly.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import wave

SAMPLE_RATE = 22050


def _load():
    try:
        import espeakng_loader
    except ImportError:
        espeakng_loader = None
    if espeakng_loader is not None:
        # Without ESPEAK_DATA_PATH espeak-ng exits the whole process.
        os.environ.setdefault("ESPEAK_DATA_PATH", espeakng_loader.get_data_path())
        ctypes.CDLL(espeakng_loader.get_library_path(), mode=ctypes.RTLD_GLOBAL)
    from pyttsx3.drivers import _espeak

    return _espeak


def _fix_noise_seed(espeak) -> None:
    """Breathy variants (+f3, +m3, ...) add noise from rand(), which espeak-ng seeds from the clock."""
    ctypes.CDLL(None).srand(0)
    seed = getattr(espeak.dll, "espeak_ng_SetRandSeed", None)
    if seed is not None:
        seed.argtypes = [ctypes.c_long]
        seed(0)


def speak(request: dict) -> dict:
    espeak = _load()
    rate = espeak.Initialize(espeak.AUDIO_OUTPUT_SYNCHRONOUS, 1000)
    if rate != SAMPLE_RATE:
        raise RuntimeError(f"espeak-ng did not start (sample rate {rate})")
    chunks: list[bytes] = []

    def collect(wav, numsamples, events):
        if numsamples > 0:
            chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0

    espeak.SetSynthCallback(collect)
    _fix_noise_seed(espeak)
    if espeak.SetVoiceByName(request["voice"].encode("utf-8")) != espeak.EE_OK:
        raise RuntimeError(f'espeak-ng has no voice "{request["voice"]}"')
    espeak.SetParameter(espeak.RATE, int(request["rate"]), 0)
    espeak.SetParameter(espeak.PITCH, int(request["pitch"]), 0)
    used = {"rate": espeak.GetParameter(espeak.RATE), "pitch": espeak.GetParameter(espeak.PITCH)}
    voice = espeak.GetCurrentVoice()
    used["voice"] = voice.contents.name.decode("utf-8", "replace") if voice and voice.contents.name else ""
    espeak.Synth(request["text"].encode("utf-8"), flags=espeak.ENDPAUSE | espeak.CHARS_UTF8)
    espeak.Synchronize()
    data = b"".join(chunks)
    with wave.open(request["wav"], "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(data)
    used["samples"] = len(data) // 2
    return used


def main() -> int:
    try:
        print(json.dumps(speak(json.load(sys.stdin))))
    except Exception as e:  # reported to the parent as one line
        print(json.dumps({"error": str(e)}))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
