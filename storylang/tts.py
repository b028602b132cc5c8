"""Speech from a server of the OpenAI speech API (`POST /v1/audio/speech`): OpenAI itself, or a
local server (Kokoro and other open TTS models behind an OpenAI-compatible front end).

Settings come from `storyc.toml` `[tts]` (`base_url`, `model`, `key_env`, `timeout`, `format`)
with `STORYC_TTS_URL` in the environment over the file. As for the LLM, only a server the user
named (`STORYC_TTS_URL`, `OPENAI_BASE_URL`, OpenAI's own) or allowed (`[trust] servers`) is sent
the key: a server only the project file names gets none. Whatever the server answers (WAV, MP3,
Opus, FLAC, AAC or raw PCM) is decoded by ffmpeg and conformed to one mono 16-bit WAV at 24 kHz,
so timing reads real sample counts as it does for espeak-ng.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from storylang import atomic, config, trust
from storylang.diagnostics import OneLineError

OPENAI_URL = "https://api.openai.com/v1"
FORMATS = ("wav", "mp3", "opus", "flac", "aac", "pcm")
RATE = 24000  # what every answer is conformed to (OpenAI's own rate)


class TtsError(OneLineError):
    pass


@dataclass(frozen=True)
class TtsSettings:
    base_url: str = OPENAI_URL
    model: str = "gpt-4o-mini-tts"
    key_env: str = "OPENAI_API_KEY"
    timeout: float = 60.0
    format: str = "wav"  # what the server is asked for
    instructions: bool = True  # a parenthetical is sent as `instructions` (false for servers that refuse it)
    trusted: bool = True  # the user named or allowed the server: it may be sent their key

    @property
    def shown(self) -> str:
        """The base URL without credentials, for messages and records."""
        return trust.shown_url(self.base_url)


def settings_for(script: Path) -> TtsSettings:
    """The speech server of this script: STORYC_TTS_URL, else [tts] base_url, else OPENAI_BASE_URL or OpenAI's."""
    table = config.load(script).get("tts", {})
    env_url = os.environ.get("STORYC_TTS_URL")
    default = os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    url = env_url or table.get("base_url") or default
    if not url.startswith(("http://", "https://")):
        raise TtsError(f"{url!r} is not a speech server URL; write it as http://host:port/v1")
    key_env = table.get("key_env", "OPENAI_API_KEY")
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*(API_KEY|TOKEN)", key_env):
        raise TtsError(f"[tts] key_env = {key_env!r}: name a variable ending in API_KEY or TOKEN (the project "
                       "file must not pick another secret of yours)")
    instructions = table.get("instructions", True)  # config.py checked it is a boolean
    fmt = table.get("format", "wav")
    if fmt not in FORMATS:
        raise TtsError(f"[tts] format = {fmt!r}; choose one of: {', '.join(FORMATS)}")
    # a URL only the project file names gets no key: the script may come from a stranger
    trusted = bool(env_url) or "base_url" not in table or trust.server_trusted(url, (default, OPENAI_URL))
    return TtsSettings(base_url=url.rstrip("/"), model=table.get("model", "gpt-4o-mini-tts"),
                       key_env=key_env, timeout=float(table.get("timeout", 60)),
                       format=fmt, instructions=instructions, trusted=trusted)


def speak(text: str, voice_id: str, target: Path, s: TtsSettings, ffmpeg: str, direction: str = "") -> dict:
    """Ask the server for `text` in `voice_id` (directed by `direction`), decode what it says into a
    WAV at `target` (atomically); returns what was used and the digest of the server's answer."""
    audio = _request(text, voice_id, s, direction)
    raw = ["-f", "s16le", "-ar", str(RATE), "-ac", "1"] if s.format == "pcm" else []
    with atomic.atomic_path(target, suffix=".wav") as tmp:
        proc = subprocess.run([ffmpeg, "-v", "error", "-y", *raw, "-i", "pipe:0", "-ac", "1", "-ar", str(RATE),
                               "-c:a", "pcm_s16le", "-f", "wav", str(tmp)], input=audio, capture_output=True)
        if proc.returncode != 0:
            why = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio"]
            raise TtsError(f"{s.shown} answered with audio that cannot be decoded as {s.format} ({why[0]})")
    return {"engine": "openai", "server": s.shown, "model": s.model, "format": s.format,
            "answer_sha256": hashlib.sha256(audio).hexdigest()}


def _request(text: str, voice_id: str, s: TtsSettings, direction: str = "") -> bytes:
    import openai  # only when a line is really spoken by a server

    key = trust.api_key(s.key_env, s.trusted, s.base_url)
    if key is None:
        raise TtsError(f"no API key for {s.shown}: set {s.key_env} in the environment")
    client = openai.OpenAI(base_url=s.base_url, api_key=key, max_retries=2,
                           timeout=openai.Timeout(s.timeout, connect=min(s.timeout, 10.0)))
    try:
        extra = {"instructions": direction} if direction else {}
        reply = client.audio.speech.create(model=s.model, voice=voice_id, input=text, response_format=s.format,
                                           **extra)
        return reply.read()
    except openai.APITimeoutError as e:
        raise TtsError(f"{s.shown} did not answer within {s.timeout:.0f}s; raise [tts] timeout, or build "
                       "with --voices espeak") from e
    except openai.APIConnectionError as e:
        raise TtsError(f"the speech server {s.shown} cannot be reached; start it, or build with "
                       "--voices espeak") from e
    except openai.APIStatusError as e:
        raise TtsError(f"{s.shown} refused the line (HTTP {e.status_code}: {_said(e)})") from e


def _said(e) -> str:
    body = e.body if isinstance(e.body, dict) else {}
    error = body.get("error", body)
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or e.message)[:200]
