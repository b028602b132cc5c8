"""Asking an OpenAI-compatible server for JSON, with the official `openai` package.

Structured output first (`response_format` with a JSON schema, strict); a server that refuses
the schema is asked again with the schema in the instructions only. Every answer is parsed
from the text (fenced or not) and validated locally, because some servers accept a schema and
ignore it; an invalid answer is re-asked once with the validation error. 429s, 5xx and
timeouts are retried by the package itself (backoff honouring Retry-After).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from storylang import trust
from storylang.diagnostics import OneLineError

OPENAI_URL = "https://api.openai.com/v1"
CONNECT_TIMEOUT = 10.0  # seconds


class LlmError(OneLineError):
    """The server or its answer failed; `endpoint` is True when no further request can succeed."""

    def __init__(self, message: str, endpoint: bool = False):
        super().__init__(message)
        self.endpoint = endpoint


@dataclass(frozen=True)
class Endpoint:
    model: str
    base_url: str | None = None  # None: the openai package's own (OPENAI_BASE_URL, else OpenAI's)
    key_env: str = "OPENAI_API_KEY"
    timeout: float = 120.0
    retries: int = 4
    trusted: bool = True  # the user named or allowed the server: it may be sent their key (trust.py)

    @property
    def url(self) -> str:
        return (self.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL).rstrip("/")

    @property
    def shown(self) -> str:
        """The base URL without credentials, for messages and the lock."""
        return trust.shown_url(self.url)


@dataclass(frozen=True)
class Answer:
    value: BaseModel
    model: str  # as served
    fingerprint: str
    format: str  # "json_schema" or "text"
    raw: str


def untrusted_notice(ep: Endpoint) -> str | None:
    """The one line to show when a key is held back from a server the user did not name."""
    if ep.trusted or not os.environ.get(ep.key_env):
        return None
    return (f"{ep.shown} is named by the script or storyc.toml, not by you: it gets no {ep.key_env}; "
            f"name it in OPENAI_BASE_URL or your own config to send it (docs/security.md)")


def connect(ep: Endpoint):
    """An `openai.OpenAI` client for the endpoint; LlmError when there is no key where one is needed."""
    import openai  # ~0.6 s: only when a request is really made

    key = trust.api_key(ep.key_env, ep.trusted, ep.url)  # Ollama, llama.cpp, vLLM, LM Studio want none
    if key is None:
        raise LlmError(f"no API key for {ep.shown}: set {ep.key_env} in the environment", endpoint=True)
    # a host that does not answer at all is given up on in seconds, not after the answer timeout
    timeout = openai.Timeout(ep.timeout, connect=min(ep.timeout, CONNECT_TIMEOUT))
    return openai.OpenAI(base_url=ep.url, api_key=key, timeout=timeout, max_retries=ep.retries)


def ask(client, ep: Endpoint, body: dict, schema: type[BaseModel], what: str) -> Answer:
    """One validated answer to `body` (a chat completion request with `response_format`)."""
    fmt = "json_schema"
    try:
        response = _create(client, ep, body, what)
    except _SchemaRefused:
        fmt = "text"
        body = {k: v for k, v in body.items() if k != "response_format"}
        response = _create(client, ep, body, what)
    messages = list(body["messages"])
    for attempt in (1, 2):
        text, problem = _content(response)
        if problem is None:
            value, problem = parse_answer(text, schema)
            if problem is None:
                return Answer(value, response.model or ep.model, response.system_fingerprint or "", fmt, text)
        if attempt == 2:
            raise LlmError(f"{what}: the model's answer was unusable twice ({problem})")
        # once more, with what was wrong
        retry = dict(body, messages=messages + [
            {"role": "assistant", "content": text or ""},
            {"role": "user", "content": f"That answer cannot be used: {problem}. "
                                        "Answer again with only the JSON object the schema describes."}])
        response = _create(client, ep, retry, what)


class _SchemaRefused(Exception):
    pass


_REFUSED_WORDS = ("response_format", "json_schema", "schema", "structured")


# What the writer reads for each failure of the openai package (first match wins: a timeout is
# also a connection error), and whether no further request can succeed.
_FAILURES = (
    ("AuthenticationError", "{url} refused the key (401): check {key_env}", True),
    ("PermissionDeniedError", "{url} denied access (403): {said}", True),
    ("NotFoundError", '{url} has no model "{model}" (404): {said}; set llm "model" in the script or '
                      "[llm] model in storyc.toml", True),
    ("RateLimitError", "{what}: {url} is still rate-limiting after {retries} retries; try later or lower --jobs", True),
    # a server that hangs is given up on for the whole run, not waited out again for every shot
    ("APITimeoutError", "{what}: {url} gave no answer within {timeout:g} s ({retries} retries); "
                        "raise [llm] timeout in storyc.toml", True),
    ("APIConnectionError", 'no LLM server answers at {url}: start it, or set llm ... server "URL" in the script '
                           "or [llm] base_url in storyc.toml", True),
    ("APIStatusError", "{what}: {url} failed ({status}): {said}", False),
)


def _create(client, ep: Endpoint, body: dict, what: str):
    import openai

    try:
        return client.chat.completions.create(**body)
    except openai.BadRequestError as e:
        if "response_format" in body and any(w in str(e).lower() for w in _REFUSED_WORDS):
            raise _SchemaRefused() from e
        raise LlmError(f"{what}: {ep.shown} refused the request (400): {_said(e)}") from e
    except openai.OpenAIError as e:
        for name, message, endpoint in _FAILURES:
            if isinstance(e, getattr(openai, name)):
                raise LlmError(message.format(
                    url=ep.shown, key_env=ep.key_env, model=ep.model, retries=ep.retries, timeout=ep.timeout,
                    what=what, said=_said(e), status=getattr(e, "status_code", "?")), endpoint=endpoint) from e
        raise LlmError(f"{what}: {ep.shown}: {e}") from e


def _said(e) -> str:
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body["error"] if isinstance(body.get("error"), dict) else body
        if inner.get("message"):
            return str(inner["message"])[:300]
    return str(getattr(e, "message", e))[:300]


def _content(response) -> tuple[str, str | None]:
    """The answer's text, or what makes it no answer (refused, cut off, empty)."""
    if not getattr(response, "choices", None):
        return "", "the server sent no choices"
    choice = response.choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        return "", f"the model refused: {message.refusal[:200]}"
    text = (message.content or "").strip()
    if choice.finish_reason == "length":
        return text, "the answer was cut off (the length limit was reached)"
    if not text:
        return "", "the answer was empty"
    return text, None


_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.S)


def parse_answer(text: str, schema: type[BaseModel]) -> tuple[BaseModel | None, str | None]:
    """The JSON object in `text` (bare, fenced, or with words around it), validated by `schema`."""
    fenced = _FENCE.search(text)
    candidate = fenced.group(1) if fenced else text
    start = candidate.find("{")
    if start < 0:
        return None, "it holds no JSON object"
    try:
        data, _ = json.JSONDecoder().raw_decode(candidate[start:])
    except json.JSONDecodeError as e:
        return None, f"its JSON is broken ({e.msg} at character {e.pos})"
    try:
        value = schema.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the object"
        return None, f"{where}: {first['msg']} ({e.error_count()} problem{'s' if e.error_count() > 1 else ''})"
    return value, None
