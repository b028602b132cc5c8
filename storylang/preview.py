"""`storyc watch FILE --serve`: a page beside the editor with the film and its storyboard.

A small HTTP server on 127.0.0.1 (never another interface unless asked) serves one page, its
state as JSON, a stream of that state as server-sent events, the built film (with byte
ranges, so the player can seek) and each panel's picture. Every route is fixed: no part of a
URL names a file, so nothing outside the build folder can be reached, and every file served is
checked to lie inside it. The page writes every piece of script text with `textContent`,
never as HTML.

The state: the film and its version (the page reloads the video after each rebuild and keeps
its place), the panels of the last edit list (each with its start frame, length and state:
card, queued, rendering with progress, rendered, failed with the reason), the last check's problems,
and what the last rebuild redid and how long it took.
"""

from __future__ import annotations

import json
import mimetypes
import queue
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from storylang.builddir import build_root, film_dir
from storylang.progress import QUEUED, Progress
from storylang.resources import templates_dir

CHUNK = 1 << 16


class PreviewState:
    """What the page shows; every change wakes the event streams."""

    def __init__(self, script: Path):
        self.script = script
        self.lock = threading.Lock()
        self.version = 0
        self.data: dict = {"title": script.name, "film": None, "film_version": 0, "fps": 24, "panels": [],
                           "problems": [], "last": None, "building": False}
        self.listeners: list[queue.Queue] = []
        self.pictures: list[Path | None] = []

    def snapshot(self) -> dict:
        with self.lock:
            return json.loads(json.dumps({**self.data, "version": self.version}))

    def change(self, **updates) -> None:
        with self.lock:
            self.data.update(updates)
            self.version += 1
            listeners = list(self.listeners)
        for q in listeners:
            q.put(self.version)

    def panel(self, shot: str, **updates) -> None:
        with self.lock:
            for p in self.data["panels"]:
                if p["shot"] == shot:
                    p.update(updates)
            self.version += 1
            listeners = list(self.listeners)
        for q in listeners:
            q.put(self.version)

    # ------------------------------------------------------------------ from the watcher

    def rebuilt(self, r) -> None:
        """A rebuild's outcome: the new film and panels, or the problems that stopped it."""
        last = {"changed": r.changed, "redone": r.redone, "seconds": round(r.seconds, 2), "first": r.first}
        if r.error is not None:
            self.change(problems=[_problem(d) for d in getattr(r.error, "diagnostics", [])]
                        or [{"file": "", "line": 0, "column": 0, "message": str(r.error), "hint": None}],
                        last={**last, "failed": True}, building=False)
            return
        failures = {_shot_of(d.message): d.message for d in (r.report.failures if r.report else [])}
        warnings = [_problem(d) for d in (r.report.warnings if r.report else [])]
        cards = r.report is None or getattr(r.report, "renderer", "animatic") == "animatic"
        panels, pictures, fps = panels_of(self.script, failures, cards)
        self.pictures = pictures
        self.change(film="/film.mp4", film_version=self.data["film_version"] + 1, panels=panels, fps=fps,
                    problems=warnings, last=last, building=False)

    def progress(self) -> Progress:
        """A Progress for the watcher's builds: a shot's render rows become its panel's state."""
        state = self

        class Rows(Progress):
            def waiting(self, shots: list[str]) -> None:
                for shot in shots:
                    state.panel(shot, state="queued", detail="")

            def row(self, key: str, text: str | None) -> None:
                super().row(key, text)
                m = re.fullmatch(r"shot (\S+)", key)
                if m and text:  # "server: queued" until the server starts it, then its nodes and steps
                    queued = text.endswith(f": {QUEUED}")
                    state.panel(m.group(1), state="queued" if queued else "rendering", detail=text)

        return Rows()


def panels_of(script: Path, failures: dict[str, str], cards: bool) -> tuple[list[dict], list[Path | None], float]:
    """The storyboard of the last build's edit list: one panel per shot, its picture's file
    (`cards`: the animatic drew every picture)."""
    try:
        edit = json.loads((film_dir(script) / "timeline.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [], [], 24.0
    fps = edit.get("fps_num", 24) / edit.get("fps_den", 1)
    panels, pictures = [], []
    for clip in edit.get("clips", []):
        if not clip.get("shot") or clip["shot"].startswith("#"):
            continue  # the title and end cards
        files = clip.get("files") or []
        picture = script.resolve().parent / files[0] if files else None
        still = picture is not None and picture.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp")
        state = "failed" if clip["shot"] in failures else "card" if cards or clip.get("source") == "card" else "rendered"
        panels.append({"shot": clip["shot"], "start": clip["start"], "frames": clip["frames"],
                       "seconds": round(clip["frames"] / fps, 2), "state": state,
                       "detail": failures.get(clip["shot"]), "picture": f"/panel/{len(pictures)}" if still else None})
        pictures.append(picture if still else None)
    return panels, pictures, fps


def _problem(d) -> dict:
    span = d.span
    return {"file": Path(d.file).name, "line": span.line if span else 0, "column": span.column if span else 0,
            "message": d.message, "hint": d.hint, "severity": d.severity}


def _shot_of(message: str) -> str:
    m = re.match(r"shot (\S+)", message)
    return m.group(1) if m else ""


# ---------------------------------------------------------------------- the server

class PreviewHandler(BaseHTTPRequestHandler):
    """The page's routes; make_server gives a subclass its state, page and build folder."""

    state: PreviewState
    page: bytes
    root: Path
    routes = {"/": "send_page", "/state": "send_json", "/events": "send_events", "/film.mp4": "send_film"}

    def log_message(self, *args) -> None:  # the watch prints its own lines
        pass

    def do_GET(self) -> None:  # noqa: N802 - the http.server name
        path = self.path.split("?", 1)[0]
        if path in self.routes:
            return getattr(self, self.routes[path])()
        m = re.fullmatch(r"/panel/(\d{1,6})", path)
        if m:
            return self.send_picture(int(m.group(1)))
        self.send_error(404, "not found")

    def send_page(self) -> None:
        self.reply(200, self.page, "text/html; charset=utf-8")

    def send_json(self) -> None:
        self.reply(200, json.dumps(self.state.snapshot()).encode(), "application/json")

    def send_events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        q: queue.Queue = queue.Queue()
        with self.state.lock:
            self.state.listeners.append(q)
        try:
            self.send_state()
            while True:
                try:
                    q.get(timeout=15)
                    while not q.empty():
                        q.get_nowait()  # many changes at once: one message of the latest state
                    self.send_state()
                except queue.Empty:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
        except OSError:  # the page went away
            pass
        finally:
            with self.state.lock:
                self.state.listeners.remove(q)

    def send_state(self) -> None:
        self.wfile.write(b"event: state\ndata: " + json.dumps(self.state.snapshot()).encode() + b"\n\n")
        self.wfile.flush()

    def send_film(self) -> None:
        self.send_file(film_dir(self.state.script) / f"{self.state.script.stem}.mp4", "video/mp4")

    def send_picture(self, index: int) -> None:
        pictures = self.state.pictures
        if index >= len(pictures) or pictures[index] is None:
            return self.send_error(404, "no such panel picture")
        self.send_file(pictures[index], mimetypes.guess_type(pictures[index].name)[0] or "image/png")

    def send_file(self, path: Path, kind: str) -> None:
        """A file of the build folder, whole or the byte range asked for (a player seeks so)."""
        try:
            real = path.resolve(strict=True)
        except OSError:
            return self.send_error(404, "not built yet")
        if self.root not in real.parents:
            return self.send_error(403, "outside the build folder")
        size = real.stat().st_size
        span = byte_range(self.headers.get("Range", ""), size)
        if span == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return
        first, last = span or (0, size - 1)
        self.send_response(206 if span else 200)
        self.send_header("Content-Type", kind)
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(last - first + 1))
        self.send_header("Cache-Control", "no-store")
        if span:
            self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
        self.end_headers()
        try:
            copy_range(real, first, last, self.wfile)
        except OSError:  # the player closed the connection (it seeks so)
            pass

    def reply(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                                    "script-src 'self' 'unsafe-inline'; img-src 'self'; media-src 'self'")
        self.end_headers()
        self.wfile.write(body)


def byte_range(header: str, size: int):
    """(first, last) of a `Range: bytes=a-b` header, None for none, "unsatisfiable" past the end."""
    m = re.fullmatch(r"bytes=(\d*)-(\d*)", header)
    if not m or not size or not (m.group(1) or m.group(2)):
        return None
    a, b = m.groups()
    first, last = (int(a), min(int(b or size - 1), size - 1)) if a else (max(size - int(b), 0), size - 1)
    return "unsatisfiable" if first > last else (first, last)


def copy_range(path: Path, first: int, last: int, out) -> None:
    with open(path, "rb") as fh:
        fh.seek(first)
        left = last - first + 1
        while left > 0:
            block = fh.read(min(CHUNK, left))
            if not block:
                break
            out.write(block)
            left -= len(block)


def make_server(state: PreviewState, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    handler = type("Handler", (PreviewHandler,), {
        "state": state, "page": (templates_dir() / "preview" / "preview.html").read_bytes(),
        "root": build_root(state.script).resolve()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server
