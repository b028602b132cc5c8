"""`storyc watch FILE`: rebuild what an edit changed, every time the writer saves.

A watchdog observer watches the folders of the script, its includes, every file it refers to
and the project's templates, following them as the script changes (editors save by writing a
temporary file and renaming it, so created and moved events count as much as modified ones).
Events are gathered until the folder has been quiet for a moment (one rebuild per burst of
saves); a save that leaves every input's content unchanged does nothing. A rebuild that fails
prints its diagnostics and the last good film stays in place; a good one replaces the film atomically (the build writes a
temporary file and renames it), so a player never sees a broken file. A save during a rebuild
cancels it at the next stage boundary and starts again.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from storylang import explain, stamp
from storylang.build import BuildOptions, Superseded, build
from storylang.builddir import build_root, film_dir
from storylang.diagnostics import StoryError
from storylang.loader import Loader
from storylang.progress import Progress
from storylang.resolve import resolve_file

QUIET = 0.1  # seconds without events before a burst of saves counts as one (an editor's save is
# a few events within milliseconds; a save during a rebuild cancels it, so a longer burst costs little)


@dataclass
class Rebuilt:
    """One rebuild, as the watch line reports it."""

    changed: list[str]  # what the writer changed, per shot or line
    redone: str  # what the build redid
    seconds: float
    output: Path | None = None
    error: StoryError | None = None
    first: bool = False  # the watch's first build (nothing to compare with but the last session's)
    report: object | None = None  # the build's report (the preview page reads its failures and warnings)


def inputs_of(script: Path, loader: Loader | None = None) -> set[Path]:
    """Every file the film reads (see stamp.inputs); just the script while it does not resolve."""
    film, _diags, _sources = resolve_file(script, str(script), loader=loader)
    return stamp.inputs(film, script) if film is not None else {script.resolve()}


def content_digest(files: set[Path]) -> str:
    """One digest of every input's bytes (a missing file counts too): unchanged content, no rebuild."""
    h = hashlib.sha256()
    for path in sorted(files):
        h.update(str(path).encode() + b"\0")
        try:
            h.update(hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            h.update(b"missing")
    return h.hexdigest()


def changes(before: explain.Record | None, after: explain.Record | None) -> list[str]:
    """What the writer changed between two builds, per shot and line, in a few words each."""
    if before is None or after is None:
        return []
    out = []
    for sid, entry in after.shots.items():
        old = before.shots.get(sid)
        if old is None:
            out.append(f"shot {sid} new")
            continue
        names = [k for k in entry["facts"] if old["facts"].get(k) != entry["facts"][k]]
        if names:
            out.append(f"shot {sid} {', '.join(names)}")
    out += [f"shot {sid} removed" for sid in before.shots if sid not in after.shots]
    # lines: one entry per speaker and change ("voice rate of IDA (6 lines)"), in film order
    groups: dict[tuple[str, str], list[str]] = {}
    for key, entry in after.lines.items():
        old = before.lines.get(key)
        if old is not None and old["facts"] != entry["facts"]:
            names = ", ".join(k for k in entry["facts"] if old["facts"].get(k) != entry["facts"][k])
            groups.setdefault((entry["facts"].get("speaker", ""), names), []).append(key)
    for (speaker, names), keys in groups.items():
        out.append(f"line {keys[0]} {names}" if len(keys) == 1 else f"{names} of {speaker} ({len(keys)} lines)")
    return out


def describe(report) -> str:
    """What a build redid, in one clause."""
    parts = []
    if report.rendered:
        parts.append(f"{report.rendered} {'render' if report.renderer == 'comfy' else 'card'}"
                     f"{'s' * (report.rendered != 1)}")
    if report.labels_drawn:
        parts.append(f"{report.labels_drawn} word overlay{'s' * (report.labels_drawn != 1)}")
    if report.lines_spoken:
        parts.append(f"{report.lines_spoken} line{'s' * (report.lines_spoken != 1)} spoken")
    if report.picture != "reused":
        parts.append(f"picture {report.picture}")
    if report.sound != "reused":
        parts.append("sound mixed")
    return ", ".join(parts) or "nothing"


class Watcher:
    """Watch a film's inputs and rebuild on change; `emit` receives each Rebuilt."""

    def __init__(self, script: Path, options: BuildOptions, emit: Callable[[Rebuilt], None],
                 preview_first: bool = False, quiet: float = QUIET, say: Callable[[str], None] | None = None,
                 progress: Callable[[], Progress] | None = None):
        self.script = script
        self.progress = progress or (lambda: Progress(say=say))  # one per build
        self.say = say  # a line the writer must see (another build holds the film)
        self.options = options
        self.emit = emit
        self.preview_first = preview_first
        self.quiet = quiet
        self.events: queue.Queue = queue.Queue()
        self.loader = Loader()
        self.digest: str | None = None
        self.rebuilds = 0
        self.watched: set[Path] = set()  # folders the observer watches
        self.handler = None
        self.record_file = film_dir(script) / "explain.json"

    # ------------------------------------------------------------------ one rebuild

    def rebuild(self, cancel: threading.Event) -> None:
        first, self.rebuilds = self.rebuilds == 0, self.rebuilds + 1
        before = explain.Record.load(self.record_file)
        t0 = time.perf_counter()
        runs = [replace(self.options, preview=True, cancel=cancel)] if self.preview_first else []
        runs.append(replace(self.options, cancel=cancel))
        for options in runs:
            try:
                report = build(self.script, options, self.progress())
            except Superseded:
                return
            except StoryError as e:
                self.emit(Rebuilt(changes(before, explain.Record.load(self.record_file)), "nothing",
                                  time.perf_counter() - t0, error=e, first=first))
                return
            self.emit(Rebuilt(changes(before, explain.Record.load(self.record_file)), describe(report),
                              time.perf_counter() - t0, report.output, first=first, report=report))

    # ------------------------------------------------------------------ the loop

    def _observe(self):
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        build_dir = build_root(self.script).resolve()
        events = self.events

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event):
                if event.event_type in ("opened", "closed_no_write"):
                    return
                paths = [Path(p).resolve() for p in (event.src_path, getattr(event, "dest_path", "")) if p]
                if all(build_dir in p.parents or p == build_dir for p in paths):
                    return  # our own output
                events.put(paths)

        observer = Observer()
        self.handler = Handler()
        observer.start()
        return observer

    def _watch(self, observer, files: set[Path]) -> None:
        """Watch the folder of every input, and of inputs added since (an include, a music file in
        a new folder); a folder not made yet through the nearest one that exists, to see it made."""
        folders = {self.script.resolve().parent}
        for path in files:
            folder = path.parent
            while not folder.is_dir() and folder != folder.parent:
                folder = folder.parent
            folders.add(folder)
        for folder in sorted(folders - self.watched):
            observer.schedule(self.handler, str(folder), recursive=False)
            self.watched.add(folder)

    def _burst(self, stop: threading.Event) -> bool:
        """Wait for a change and for the quiet after it; False when stopped."""
        while not stop.is_set():
            try:
                self.events.get(timeout=0.1)
                break
            except queue.Empty:
                continue
        else:
            return False
        while True:
            try:
                self.events.get(timeout=self.quiet)
            except queue.Empty:
                return True

    def run(self, stop: threading.Event) -> None:
        """Build once, then rebuild after every change until `stop` is set."""
        observer = self._observe()
        worker: threading.Thread | None = None
        cancel = threading.Event()
        try:
            files = inputs_of(self.script, self.loader)
            self._watch(observer, files)
            self.digest = content_digest(files)
            worker = self._start(cancel)
            while self._burst(stop):
                files = inputs_of(self.script, self.loader)
                self._watch(observer, files)
                digest = content_digest(files)
                if digest == self.digest:
                    continue  # saved without a change
                self.digest = digest
                if worker is not None and worker.is_alive():
                    cancel.set()  # superseded: it stops at its next stage
                    worker.join()
                cancel = threading.Event()
                worker = self._start(cancel)
        finally:
            cancel.set()
            if worker is not None:
                worker.join()
            observer.stop()
            observer.join()

    def _start(self, cancel: threading.Event) -> threading.Thread:
        t = threading.Thread(target=self.rebuild, args=(cancel,), daemon=True, name="rebuild")
        t.start()
        return t
