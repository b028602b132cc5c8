"""One ComfyUI server over HTTP and its websocket, as PROTOCOL.md describes the API of 0.3.64.

Plain HTTP through urllib (every call has a timeout), the websocket through websocket-client.
Credentials come from the environment only (`STORYC_COMFY_TOKEN`, or `STORYC_COMFY_TOKEN_<HOST>`
for one server; `user:password` means basic auth) and are sent on every request and on the
websocket; they never appear in a URL we print, an error, or a file we write.
"""

from __future__ import annotations

import base64
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from storylang import atomic, trust
from storylang.diagnostics import OneLineError

IMAGE_LIMIT = 256 << 20  # bytes: a server that sends more for one image is cut off
VIDEO_LIMIT = 8 << 30
_SAFE_NAME = re.compile(r"^[^\x00/\\]{1,255}$")


class ComfyError(OneLineError):
    """A server could not be used; `retry` says whether trying again may help."""

    def __init__(self, message: str, retry: bool = False, status: int | None = None, body=None):
        super().__init__(message)
        self.retry = retry
        self.status = status
        self.body = body


def shown(url: str) -> str:
    """A server URL as we print and record it: no user name, password or query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


def credentials(url: str) -> str | None:
    """The Authorization header for a server, from the environment (never from the URL we print)."""
    parts = urllib.parse.urlsplit(url)
    token = os.environ.get(trust.host_token_var(url)) or os.environ.get("STORYC_COMFY_TOKEN")
    if parts.username and not token:
        token = urllib.parse.unquote(parts.username) + ":" + urllib.parse.unquote(parts.password or "")
    if not token:
        return None
    if ":" in token:
        return "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")
    return "Bearer " + token


def prompt_id_for(graph_digest: str) -> str:
    """The prompt id of a graph: its digest as a UUID, so a resubmission of the same shot is idempotent."""
    return str(uuid.UUID(graph_digest[:32]))


def safe_output_name(entry: dict) -> tuple[str, str, str]:
    """(filename, subfolder, type) of an output entry, or ComfyError if it could escape the cache."""
    name, sub, kind = entry.get("filename"), entry.get("subfolder") or "", entry.get("type") or "output"
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or name in (".", "..") or len(name.encode()) > 255:
        raise ComfyError(f"the server named an output {name!r}, which is not a plain file name")
    if not isinstance(sub, str) or "\x00" in sub or sub.startswith(("/", "\\")) or ".." in sub.split("/"):
        raise ComfyError(f"the server put an output in the folder {sub!r}, outside its output folder")
    if kind not in ("output", "temp", "input"):
        raise ComfyError(f"the server gave an output of type {kind!r}")
    return name, sub, kind


@dataclass
class Reply:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body.strip() else None


class Client:
    def __init__(self, url: str, timeout: float = 30.0, authenticate: bool = True):
        """`authenticate`: the user named or allowed this server, so it may get their credentials
        (trust.py); otherwise nothing of theirs is sent to it."""
        self.url = url.rstrip("/")
        self.name = shown(self.url)
        self.timeout = timeout
        self._auth = credentials(self.url) if authenticate else None
        self._jobs: bool | None = None  # whether the server has the jobs API (found out on first use)
        parts = urllib.parse.urlsplit(self.url)
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "") if parts.hostname else parts.netloc
        self._base = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))

    # ------------------------------------------------------------------ HTTP

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 limit: int = 64 << 20, into: Path | None = None) -> Reply:
        req = urllib.request.Request(self._base + path, data=body, method=method, headers=dict(headers or {}))
        if self._auth:
            req.add_header("Authorization", self._auth)
        what = f"{method} {self.name}{path.split('?')[0]}"
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return Reply(resp.status, _read_limited(resp, limit, what, into))
        except urllib.error.HTTPError as e:
            data = e.read(1 << 20)
            raise ComfyError(f"{what}: HTTP {e.code}", retry=e.code >= 500, status=e.code, body=_maybe_json(data)) from e
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ComfyError(f"{self.name} cannot be reached ({reason}): is ComfyUI running there?", retry=True) from e

    def get_json(self, path: str):
        reply = self._request("GET", path)
        try:
            return reply.json()
        except ValueError as e:
            raise ComfyError(f"GET {self.name}{path.split('?')[0]}: the reply is not JSON", retry=True) from e

    def post_json(self, path: str, data) -> Reply:
        return self._request("POST", path, json.dumps(data).encode("utf-8"), {"Content-Type": "application/json"})

    # ------------------------------------------------------------------ the API

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def model_folders(self) -> list[str]:
        return self.get_json("/models")

    def models(self, folder: str) -> list[str]:
        try:
            return self.get_json(f"/models/{urllib.parse.quote(folder)}")
        except ComfyError as e:
            if e.status == 404:
                return []
            raise

    def node_replacements(self) -> dict:
        """Node types the server replaces by others before validating (ComfyUI 0.33 and later; {} before)."""
        try:
            reply = self.get_json("/node_replacements")
        except ComfyError as e:
            if e.status == 404:
                return {}
            raise
        return reply if isinstance(reply, dict) else {}

    def system_stats(self) -> dict:
        return self.get_json("/system_stats")

    def queue(self) -> dict:
        return self.get_json("/queue")

    def job_status(self, prompt_id: str) -> str | None:
        """The prompt's state from the jobs API of ComfyUI 0.33 and later (`pending`, `in_progress`,
        `completed`, `failed`, `cancelled`); "unknown" when the server does not know it; None when
        the server has no jobs API (0.3.64: ask history and queue instead)."""
        if self._jobs is False:
            return None
        try:
            reply = self.get_json(f"/api/jobs/{urllib.parse.quote(prompt_id)}")
        except ComfyError as e:
            if e.status != 404:
                raise
            if self._jobs is None:  # is it the job that is unknown, or the whole API?
                try:
                    self.get_json("/api/jobs")
                    self._jobs = True
                except ComfyError as e2:
                    if e2.status != 404:
                        raise
                    self._jobs = False
                    return None
            return "unknown"
        self._jobs = True
        status = (reply or {}).get("status") if isinstance(reply, dict) else None
        return status if isinstance(status, str) else "unknown"

    def history(self, prompt_id: str) -> dict:
        """The prompt's history entry, or {} (not finished yet, or unknown: ask `queue` which)."""
        return (self.get_json(f"/history/{urllib.parse.quote(prompt_id)}") or {}).get(prompt_id, {})

    def submit(self, graph: dict, prompt_id: str, client_id: str, extra: dict | None = None) -> dict:
        """POST /prompt; the reply's prompt_id is the one to follow (old servers choose their own)."""
        body = {"prompt": graph, "client_id": client_id, "prompt_id": prompt_id, "extra_data": extra or {}}
        return self.post_json("/prompt", body).json() or {}

    def interrupt(self, prompt_id: str) -> None:
        self.post_json("/interrupt", {"prompt_id": prompt_id})

    def delete(self, prompt_ids: list[str]) -> None:
        self.post_json("/queue", {"delete": list(prompt_ids)})

    def forget(self, prompt_ids: list[str]) -> None:
        """Delete history entries (ours: a failed run of a prompt id we are about to submit again)."""
        self.post_json("/history", {"delete": list(prompt_ids)})

    def upload(self, name: str, data: bytes, subfolder: str, kind: str = "input") -> dict:
        """POST /upload/image (multipart) with overwrite off: identical bytes keep the name."""
        boundary = uuid.uuid4().hex
        parts = []
        for field, value in (("type", kind), ("subfolder", subfolder), ("overwrite", "false")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"\r\n\r\n{value}\r\n'.encode())
        parts.append((f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{name}"\r\n'
                      f"Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n")
        parts.append(f"--{boundary}--\r\n".encode())
        reply = self._request("POST", "/upload/image", b"".join(parts),
                              {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return reply.json() or {}

    def view(self, name: str, subfolder: str, kind: str, into: Path, limit: int) -> None:
        """GET /view into a file (written atomically), cut off past `limit` bytes."""
        query = urllib.parse.urlencode({"filename": name, "subfolder": subfolder, "type": kind})
        with atomic.atomic_path(into, suffix=into.suffix) as tmp:
            self._request("GET", f"/view?{query}", limit=limit, into=tmp)

    def fetch_input(self, name: str, subfolder: str) -> bytes | None:
        """An uploaded input's bytes, or None when the server does not have it."""
        query = urllib.parse.urlencode({"filename": name, "subfolder": subfolder, "type": "input"})
        try:
            return self._request("GET", f"/view?{query}", limit=VIDEO_LIMIT).body
        except ComfyError as e:
            if e.status in (400, 403, 404):
                return None
            raise

    # ------------------------------------------------------------------ websocket

    def connect(self, client_id: str, timeout: float = 10.0):
        """The websocket of `client_id` (a websocket-client WebSocket); ComfyError if it cannot open."""
        import websocket

        scheme = "wss" if self._base.startswith("https") else "ws"
        url = scheme + self._base[self._base.index("://"):] + "/ws?clientId=" + urllib.parse.quote(client_id)
        header = [f"Authorization: {self._auth}"] if self._auth else []
        try:
            return websocket.create_connection(url, timeout=timeout, header=header, enable_multithread=True)
        except (OSError, websocket.WebSocketException) as e:
            raise ComfyError(f"the websocket of {self.name} cannot be opened ({e})", retry=True) from e


def _read_limited(resp, limit: int, what: str, into: Path | None) -> bytes:
    total = 0
    chunks = []
    out = open(into, "wb") if into is not None else None
    try:
        while True:
            block = resp.read(1 << 20)
            if not block:
                break
            total += len(block)
            if total > limit:
                size = f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit} bytes"
                raise ComfyError(f"{what}: the server sent more than {size}; cut off")
            if out:
                out.write(block)
            else:
                chunks.append(block)
    finally:
        if out:
            out.close()
    return b"".join(chunks)


def _maybe_json(data: bytes):
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        return data.decode("utf-8", "replace")
