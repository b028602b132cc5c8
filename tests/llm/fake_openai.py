"""An OpenAI-compatible test server on 127.0.0.1: `POST /v1/chat/completions` and `GET /v1/models`,
with the shapes of OpenAI's API (chat.completion objects, `{"error": {...}}` bodies, Retry-After
on 429). Every request body is recorded.

By default it answers an expansion request with a prompt made from the shot's facts, and a
draft request with the canned outline whose key occurs in the prose. One-off replies are
queued with `then(...)`: a status with an error body and headers, a delay, other content, a
finish reason, a refusal. `refuse_schema` answers 400 to any `response_format` (servers
without structured output); `ignore_schema` accepts it and answers JSON inside prose.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import time

from aiohttp import web

from loop_server import LoopServer


def expansion_answer(body: dict) -> str:
    """A deterministic prompt from the shot's facts in the last user message."""
    text = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user" and "Shot:" in m["content"])
    facts = json.loads(text[text.index("Shot:") + 5:])
    looks = ", ".join(c["look"] for c in facts.get("characters", []))
    positive = ", ".join(x for x in (f"detailed {facts.get('framing', 'shot')}", facts.get("action", ""), looks,
                                     facts.get("setting", ""), facts.get("lighting", ""), facts.get("style", ""))
                         if x)
    if "Instruction from the writer" in text:
        positive += ", " + json.loads(text.split("Instruction from the writer: ", 1)[1].split("\n", 1)[0])
    return json.dumps({"positive": positive, "negative": (facts.get("negative", "") + ", lowres").strip(", "),
                       "camera": facts.get("camera", "") if facts.get("output") == "video" else ""})


SPEECH_VOICES = {"alloy": 220, "nova": 330, "onyx": 110}  # voice → the tone's frequency
SPEECH_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "aac": "audio/aac", "flac": "audio/flac",
                "wav": "audio/wav", "pcm": "audio/pcm"}
_FORMAT_ARGS = {"mp3": ["-c:a", "libmp3lame", "-f", "mp3"], "opus": ["-c:a", "libopus", "-f", "ogg"],
                "aac": ["-c:a", "aac", "-f", "adts"], "flac": ["-c:a", "flac", "-f", "flac"],
                "wav": ["-c:a", "pcm_s16le", "-f", "wav"], "pcm": ["-c:a", "pcm_s16le", "-f", "s16le"]}


def speech_audio(seconds: float, hz: int, fmt: str) -> bytes:
    """`seconds` of a tone at 24 kHz mono in `fmt`, made by the bundled ffmpeg."""
    import subprocess

    import imageio_ffmpeg

    return subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i",
                           f"sine=frequency={hz}:sample_rate=24000:duration={max(seconds, 0.3):.3f}", "-ac", "1",
                           *_FORMAT_ARGS[fmt], "-"], capture_output=True, check=True).stdout


class FakeOpenAI(LoopServer):
    def __init__(self, model: str = "gpt-4o-mini-2024-07-18", token: str | None = None):
        self.model = model
        self.token = token
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.replies: collections.deque = collections.deque()
        self.outlines: dict[str, list[str]] = {}  # prose key → answers in turn (the last repeats)
        self.refuse_schema = False
        self.ignore_schema = False
        self.delay = 0.0
        self.speech_delay = 0.0  # seconds before each speech answer
        self.speech_shift = 0  # Hz added to every voice's tone: the server now says lines differently
        self._ids = itertools.count(1)

    # -- control

    def then(self, **reply) -> "FakeOpenAI":
        """Queue a reply for the next request: status, error, headers, delay, content, finish_reason, refusal."""
        self.replies.append(reply)
        return self

    def outline(self, key: str, *answers: dict | str) -> None:
        self.outlines[key] = [a if isinstance(a, str) else json.dumps(a, ensure_ascii=False) for a in answers]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)  # delayed replies end now
        super().stop()

    def _app(self) -> web.Application:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/audio/speech", self._speech)
        return app

    # -- the API

    def _error(self, status: int, message: str, kind: str, code=None, param=None, headers=None):
        return web.json_response({"error": {"message": message, "type": kind, "param": param, "code": code}},
                                 status=status, headers=headers or {})

    async def _speech(self, request: web.Request):
        """OpenAI's speech endpoint: real audio in the format asked for, as long as the text (50 ms a
        letter), a tone whose pitch tells the voices apart; an unknown voice is OpenAI's 400."""
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "Incorrect API key provided: sk-...", "invalid_request_error", "invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if body.get("voice") not in SPEECH_VOICES:
            return self._error(400, f"Invalid value: '{body.get('voice')}'. Supported values are: "
                               + ", ".join(f"'{v}'" for v in SPEECH_VOICES) + ".", "invalid_request_error",
                               "invalid_value", "voice")
        if self.speech_delay:
            try:
                await asyncio.wait_for(self._stopping.wait(), self.speech_delay)
            except asyncio.TimeoutError:
                pass
        fmt = body.get("response_format", "mp3")
        # instructions change the voice, as they do on OpenAI's gpt-4o-mini-tts
        hz = SPEECH_VOICES[body["voice"]] + self.speech_shift + (37 if body.get("instructions") else 0)
        audio = await asyncio.get_running_loop().run_in_executor(
            None, speech_audio, len(body.get("input", "")) * 0.05, hz, fmt)
        return web.Response(body=audio, content_type=SPEECH_TYPES[fmt])

    async def _models(self, request: web.Request):
        return web.json_response({"object": "list", "data": [
            {"id": self.model, "object": "model", "created": 1721172741, "owned_by": "system"}]})

    async def _chat(self, request: web.Request):
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "Incorrect API key provided: sk-...", "invalid_request_error", "invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        reply = self.replies.popleft() if self.replies else {}
        delay = reply.get("delay", self.delay)
        if delay:
            try:
                await asyncio.wait_for(self._stopping.wait(), delay)
            except asyncio.TimeoutError:
                pass
        if "status" in reply:
            return self._error(reply["status"], reply.get("error", "error"), reply.get("type", "server_error"),
                               reply.get("code"), reply.get("param"), reply.get("headers"))
        if self.refuse_schema and "response_format" in body:
            return self._error(400, "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                               "with this model.", "invalid_request_error", None, "response_format")
        content = reply.get("content")
        if content is None:
            content = self._answer(body)
            if self.ignore_schema:
                content = f"Sure! Here is the prompt you asked for:\n{content}\nLet me know if you want changes."
        message = {"role": "assistant", "content": content, "refusal": reply.get("refusal")}
        if reply.get("refusal"):
            message["content"] = None
        return web.json_response({
            "id": f"chatcmpl-{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": self.model, "system_fingerprint": "fp_test0001",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": reply.get("finish_reason", "stop")}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}})

    def _answer(self, body: dict) -> str:
        prose = "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")
        for key, answers in self.outlines.items():
            if key in prose:
                turn = sum(1 for m in body["messages"] if m["role"] == "assistant")
                return answers[min(turn, len(answers) - 1)]
        return expansion_answer(body)
