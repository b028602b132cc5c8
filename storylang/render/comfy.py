"""The ComfyUI renderer: every shot's graph run on a pool of servers, outputs in the cache.

    pre-flight  each server's /system_stats, /object_info and model folders; every shot's graph
                compiled and validated against each server (a heterogeneous pool: a shot goes
                only where its graph is valid); what no server can run is reported by name, per
                shot, with its line, and the build stops (or `--skip-missing` draws a card)
    cache       a render's key is the digest of its graph (which names its inputs by content):
                a cached render is reused from any server
    run         inputs uploaded once per server under their digests (asked for first), prompts
                submitted ahead (`inflight` per server) with ids derived from the graph, followed
                on the websocket and through /history; see comfy/run.py
    outputs     fetched with /view (names checked, sizes limited), checked (decodable, frame
                counts), stored; an image is a still the edit moves with the camera, a video is a
                clip the assembly conforms to the film (and the summary says trimmed or held)
    records     renders.journal.json (shot → server → prompt → state, for resuming a killed
                build) and renders.json (provenance of every rendered shot), both in build/<film>/

Shots that fail (validation or execution errors) are listed and drawn as animatic cards, so the
film is still cut (unless `--strict`); the build then exits non-zero.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

from PIL import Image

from storylang import atomic
from storylang.cache import Cache, digest, file_digest
from storylang.comfy.client import IMAGE_LIMIT, VIDEO_LIMIT, Client, ComfyError, safe_output_name
from storylang.comfy.graphs import GraphInput, ShotGraph, compile_film, compile_music, graph_json
from storylang.comfy.run import (Cancelled, Events, Interrupted, Job, Lost, Outcome, Pool, Server, ShotFailed, adopted, cancel,
                                 describe_node_errors, new_client_id, wait_for)
from storylang.comfy.schema import MODEL_FOLDERS, ObjectInfo, live_object_info
from storylang.diagnostics import Diagnostic, StoryError
from storylang.film import Film, Shot
from storylang.progress import QUEUED
from storylang.render import Plan, RenderContext, Rendered, ShotPicture, rel
from storylang.render.animatic import AnimaticRenderer
from storylang.timing import ShotTiming, Timing
from storylang.toolchain import find_ffmpeg
from storylang import probe
from storylang.music import failed as failed_music
from storylang.probe import limit_pillow

limit_pillow()  # pictures from scripts and servers: a bomb is refused, never decoded

STAGE_VERSION = "comfy-render-1"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".mkv", ".gif")
AUDIO_SUFFIXES = (".flac", ".mp3", ".opus", ".ogg", ".wav")  # a scene's generated music


@dataclass
class ComfySettings:
    servers: list[str]
    inflight: int = 2  # prompts of ours in a server's queue at once
    skip_missing: bool = False  # shots no server can run become animatic cards
    strict: bool = False  # a failed shot fails the build (no card in its place)
    stall: float = 300.0  # seconds without any sign of progress on a running shot
    poll: float = 1.0  # seconds between /history questions when the websocket is silent
    backoff: float = 0.5  # first retry delay; doubled each time, with jitter
    max_failures: int = 3  # retryable failures in a row before a server is set aside
    timeout: float = 30.0  # seconds an HTTP request may take before the server counts as failing
    schedule: str = "models"  # "models": shots sharing models back to back on one server; "film": script order
    # servers that may be sent the user's credentials; None: all of `servers` (the caller named them)
    trusted: tuple[str, ...] | None = None

    def may_authenticate(self, url: str) -> bool:
        return self.trusted is None or url in self.trusted


@dataclass
class Live:
    """A server as pre-flight found it."""

    server: Server
    info: ObjectInfo
    version: str
    info_digest: str


@dataclass
class Result:
    file: Path
    kind: str  # "still" or "video"
    record: dict
    note: str | None = None


class ComfyRenderer:
    name = "comfy"

    def __init__(self, settings: ComfySettings):
        self.settings = settings
        self.lock = threading.Lock()
        self.steps: dict = {}  # (row, node) → (time, value) of the first step seen, for ETAs
        self.trouble: list[str] = []  # servers pre-flight could not use, and why
        self.lost: list[str] = []  # servers set aside during the build, and why
        self.made: dict[str, Result] = {}  # renders other renders read (stills, sheets, shots continued), by id
        self.readers: dict[str, list[str]] = {}  # a made-first render's id → the shots that read it
        self.shot_ids: set[str] = set()  # the film's shots (not the renders made first for them)
        self.failures: dict[str, tuple[str, str | None, str]] = {}  # id → (why, hint, server)
        self.outcomes: dict[str, Outcome] = {}
        self.blocked: dict[str, str] = {}  # renders not run because one they read failed → that one

    # ------------------------------------------------------------------ pre-flight

    def preflight(self, ctx: RenderContext) -> list[Live]:
        """Every server that answers, with its node types and model files; ComfyError if none does."""
        from concurrent.futures import ThreadPoolExecutor

        def ask(url: str) -> Live | str:
            client = Client(url, timeout=self.settings.timeout, authenticate=self.settings.may_authenticate(url))
            try:
                stats = client.system_stats()
                info = live_object_info(client)
            except ComfyError as e:
                return str(e)
            version = ((stats or {}).get("system") or {}).get("comfyui_version", "unknown")
            return Live(Server(client, inflight=self.settings.inflight), info, version, digest(info.nodes))

        with ThreadPoolExecutor(max_workers=max(len(self.settings.servers), 1)) as pool:
            answers = list(pool.map(ask, self.settings.servers))
        live = [a for a in answers if isinstance(a, Live)]
        trouble = [a for a in answers if isinstance(a, str)]
        if not live:
            raise ComfyError("no ComfyUI server answers: " + "; ".join(trouble)
                             + " (start one, or build with --renderer animatic for the animatic)")
        self.trouble = trouble
        return live

    def compile(self, film: Film, timing: Timing, ctx: RenderContext, live: list[Live]):
        """Per shot: its graph on each server that can run it, and why the others cannot."""
        by_info: dict[str, dict[str, ShotGraph]] = {}  # servers with the same nodes and models share graphs
        per_server = {}
        for lv in live:
            if lv.info_digest not in by_info:
                by_info[lv.info_digest] = {g.shot.id: g for g in compile_film(film, ctx.root, lv.info, timing=timing, prompts=ctx.prompts)}
            per_server[lv.server.name] = by_info[lv.info_digest]
        graphs: dict[str, dict[str, ShotGraph]] = {}
        problems: dict[str, list[Diagnostic]] = {}
        for shot in film.shots:
            for name, compiled in per_server.items():
                sg = compiled[shot.id]
                errors = [d for d in sg.diagnostics if d.severity == "error"]
                if sg.graph is not None and not errors:
                    graphs.setdefault(shot.id, {})[name] = sg
                else:
                    problems.setdefault(shot.id, []).extend(errors)
        missing = {sid: diags for sid, diags in problems.items() if sid not in graphs}
        return graphs, missing

    # ------------------------------------------------------------------ the protocol

    def plan(self, film: Film, timing: Timing, ctx: RenderContext) -> Plan:
        live = self.preflight(ctx)
        graphs, missing = self.compile(film, timing, ctx, live)
        if missing and not self.settings.skip_missing:
            raise StoryError(_dedupe(missing))
        todo, cached = [], []
        for shot in film.shots:
            if shot.id in graphs:
                (cached if cached_render(ctx.cache, graphs[shot.id]) else todo).append(shot.id)
        music, music_missing = self._music_graphs(film, ctx, live)
        reasons = [f"{uid} render: not in the cache: would be rendered ({_at(next(iter(by.values())).shot)})"
                   for uid, by in music.items() if not cached_render(ctx.cache, by)]
        reasons += [f"{uid}: not made: {why}" for uid, why in failed_music(music_missing, {}).items()]
        return Plan(todo=todo, cached=cached, kind="render", reasons=reasons)

    def render(self, film: Film, timing: Timing, ctx: RenderContext) -> Rendered:
        live = self.preflight(ctx)
        graphs, missing = self.compile(film, timing, ctx, live)
        if missing and not self.settings.skip_missing:
            raise StoryError(_dedupe(missing))
        journal = Journal(ctx.build_dir / "renders.journal.json" if ctx.build_dir else None)
        # the stills videos start from (`start still`) and the cast's sheets: renders the shots read
        first = self._made_first(graphs)
        music, music_missing = self._music_graphs(film, ctx, live)
        results = self._renders(film, timing, ctx, live, journal, {**first, **music, **graphs}, stage="renders")
        failures, outcomes = self.failures, self.outcomes
        made_music = {uid: rel(results[uid].file, ctx.root) for uid in music if uid in results}
        music_why = failed_music(music_missing, {k: v for k, v in failures.items() if k in music})
        reused = sum(1 for sid in graphs if sid in results and sid not in outcomes)
        submitted = sum(1 for sid in outcomes if sid in graphs)
        rendered = self._finish(film, timing, ctx, live, graphs, missing,
                                {k: v for k, v in results.items() if k in graphs},
                                {k: v for k, v in failures.items() if k in graphs}, outcomes, reused, submitted)
        rendered.music, rendered.music_why = made_music, music_why
        rendered.incomplete = any(uid in failures for uid in music)
        if made_music or music_why:
            rendered.notes[0] += f"; music: {len(made_music)} of {len(made_music) + len(music_why)} cues made"
        return rendered

    def _made_first(self, graphs: dict[str, dict[str, ShotGraph]]) -> dict[str, dict[str, ShotGraph]]:
        """The renders the shots read that are not shots themselves (start stills, the cast's sheets):
        id → server → graph; self.readers says which shots read each."""
        self.readers = {}
        upstream: dict[str, dict[str, ShotGraph]] = {}
        for sid, by_server in graphs.items():
            for name, sg in by_server.items():
                for up in sg.upstream:
                    if up.shot.id in graphs:
                        continue  # a shot of the film (continued from): a job of its own already
                    upstream.setdefault(up.shot.id, {})[name] = up
                    if sid not in self.readers.setdefault(up.shot.id, []):
                        self.readers[up.shot.id].append(sid)
        return upstream

    def _renders(self, film, timing, ctx, live, journal, graphs: dict[str, dict[str, ShotGraph]],
                 stage: str) -> dict[str, Result]:
        """Every render, found in the cache or run on the pool once what it reads has landed. Returns
        the results by id (also self.made, which uploads read); self.failures says why the others
        did not render (for a render that waited on a failed one: that one, in the writer's terms)."""
        shots = {sid: next(iter(by_server.values())).shot for sid, by_server in graphs.items()}
        self.made = results = {}
        jobs = []
        own = self.shot_ids = {s.id for s in film.shots}
        for sid, by_server in graphs.items():
            found = cached_render(ctx.cache, by_server)
            if found:
                results[sid] = found
                if ctx.landed is not None and sid in own:
                    ctx.landed(sid, picture_of(found, ctx.root))
            else:
                jobs.append(self._job(shots[sid], by_server))
        if jobs and ctx.rendering is not None:
            ctx.rendering()  # there is something to wait for: the film may fill in meanwhile
        for job in jobs:
            job.after = tuple(up for up in _reads(graphs[job.shot_id]) if up not in results)
            job.prefer = journal.server_of(job)
        # pictures made first are stills of one frame; shots keep their own lengths
        all_film = film.model_copy(update={"shots": tuple(film.shots) + tuple(
            shot for sid, shot in shots.items() if sid not in own)})
        all_timing = replace(timing, shots={**{sid: ShotTiming(1, 0, ()) for sid in shots}, **timing.shots})
        self.failures, self.outcomes, blocked = self._run(all_film, all_timing, ctx, live, jobs, journal, results,
                                                          stage=stage)
        self.blocked = blocked
        for sid, on in blocked.items():
            message, hint, server = self.failures.get(on, ("it did not render", None, ""))
            self.failures[sid] = (self._waited_on(on, shots[on], message), hint, server)
        return results

    def _music_graphs(self, film: Film, ctx: RenderContext, live: list[Live]):
        """Each `music generate` cue's graph on each server that can run it, and why no server can
        run the others (per_server)."""
        return per_server(live, lambda info: compile_music(film, ctx.root, info).values())

    def _waited_on(self, uid: str, shot: Shot, message: str) -> str:
        """Why a render did not run, in the writer's terms: what it read failed."""
        if uid.startswith("sheet."):
            return f"{shot.name} failed: {message}"  # the sheet's own name: "MARA's sheet"
        if uid in self.readers:
            return f"its start still failed: {message}"
        return f"it continues shot {uid}, which did not render"

    def sheets(self, film: Film, ctx: RenderContext) -> tuple[dict[str, Result], dict[str, tuple]]:
        """Only the film's character sheets, rendered or found in the cache (storyc sheets): a face
        settled before any shot is rendered. Returns the sheets by character, and the failures."""
        from storylang.comfy.graphs import compile_sheets

        live = self.preflight(ctx)
        per, missing = per_server(live, lambda info: compile_sheets(film, ctx.root, info).values())
        if missing and not self.settings.skip_missing:
            raise StoryError(_dedupe(missing))  # no server can make these sheets
        journal = Journal(ctx.build_dir / "renders.journal.json" if ctx.build_dir else None)
        no_shots = Timing(shots={}, frames=0, notes=(), errors=(), warnings=())
        self.readers = {}
        results = self._renders(film.model_copy(update={"shots": ()}), no_shots, ctx, live, journal, per, "sheets")
        name = {sid: sid.removeprefix("sheet.") for sid in per}
        return ({name[sid]: r for sid, r in results.items()}, {name[sid]: why for sid, why in self.failures.items()})

    def _job(self, shot: Shot, graphs: dict[str, ShotGraph]) -> Job:
        any_graph = next(iter(graphs.values()))
        return Job(shot_id=shot.id, graphs={name: sg.graph for name, sg in graphs.items()},
                   keys={name: render_key(sg.graph) for name, sg in graphs.items()},
                   inputs={name: sg.inputs for name, sg in graphs.items()}, models=models_of(any_graph.graph))

    # ------------------------------------------------------------------ running

    def _run(self, film, timing, ctx, live, jobs, journal, results, stage: str = "renders"):
        """Run the jobs on the pool. Returns the failures and outcomes by id, and the jobs not run
        because one they wait on failed (id → that one)."""
        if not jobs:
            return {}, {}, {}  # all cached: no websockets opened, no progress stage shown
        servers = [lv.server for lv in live]
        by_id = {s.id: s for s in film.shots}
        for server in servers:
            def on_status(n: int, server=server) -> None:
                server.queue_remaining = n
                self._show_server(server, ctx)

            server.events = Events(server.client, new_client_id(), on_status)
        failures: dict[str, tuple[str, str | None, str]] = {}
        outcomes: dict[str, Outcome] = {}
        ctx.progress.stage(stage, len(jobs))
        ctx.progress.waiting([j.shot_id for j in jobs])
        cancelled = threading.Event()

        def run(server: Server, job: Job) -> Outcome:
            shot = by_id[job.shot_id]
            try:
                try:
                    outcome = self._run_one(server, job, shot, film, timing, ctx, journal, cancelled)
                except ComfyError as e:
                    if e.retry:
                        raise  # the pool retries it, here or elsewhere
                    raise ShotFailed(str(e)) from e
            except ShotFailed as e:
                journal.set(job, server.name, job.prompt_id(server.name), "failed")
                with self.lock:
                    failures[job.shot_id] = (str(e), e.hint, server.name)
                ctx.progress.advance()
                return Outcome(job, server.name, job.prompt_id(server.name), error=str(e), hint=e.hint)
            results[job.shot_id] = outcome.entry["result"]
            journal.set(job, server.name, outcome.prompt_id, "done")
            ctx.progress.advance()
            if ctx.landed is not None and job.shot_id in self.shot_ids:
                ctx.landed(job.shot_id, picture_of(results[job.shot_id], ctx.root))
            return outcome

        def show(pool: Pool) -> None:
            ctx.progress.row("jobs", ", ".join(f"{n} {state}" for state, n in pool.counts().items() if n))

        pool = Pool(servers, jobs, run, max_failures=self.settings.max_failures, backoff=self.settings.backoff,
                    by_models=self.settings.schedule != "film", on_change=show)
        self.pool = pool
        try:
            outcomes = pool.run_all(ctx.cancel)
        except BaseException:
            cancelled.set()
            cancel(servers)
            for job in jobs:
                if job.shot_id not in results:
                    journal.cancel(job)
            raise
        finally:
            for server in servers:
                server.events.close()
                ctx.progress.row(f"server {server.name}", None)
            ctx.progress.row("jobs", None)
            self.lost = [f"{s.name}: {s.down}" for s in servers if s.down]
        if pool.pending:  # every server that could run them was set aside: the build cannot go on
            why = "; ".join(f"{s.name}: {s.down}" for s in servers if s.down) or "no server could run them"
            shots = ", ".join(j.shot_id for j in pool.pending)
            raise ComfyError(f"no ComfyUI server is left to render shots {shots} ({why}); finished renders are "
                             "kept: build again when a server is back")
        return failures, outcomes, pool.blocked

    def _run_one(self, server: Server, job: Job, shot: Shot, film: Film, timing: Timing, ctx: RenderContext,
                 journal, cancelled) -> Outcome:
        graph = job.graphs[server.name]
        pid = job.prompt_id(server.name)
        started = time.monotonic()
        for attempt in range(3):
            state = adopted(server, pid)
            events = server.events.watch(pid)
            server.running[pid] = job.shot_id  # before submitting: a Ctrl-C meanwhile still withdraws it
            if state == "stale":
                server.client.forget([pid])
            if state in (None, "stale"):
                self._upload(server, job, ctx, film.fps)
                got = self._submit(server, graph, pid, shot)
                if got != pid:
                    server.running[got] = server.running.pop(pid)
                    pid = got
            journal.set(job, server.name, pid, "submitted")
            ctx.progress.row(f"shot {shot.id}", f"{server.name}: {QUEUED}")  # until the server starts it
            try:
                entry = wait_for(server, pid, events, self.settings.stall, self.settings.poll, cancelled,
                                 on_event=lambda kind, data: self._show(server, shot, kind, data, ctx))
            except Cancelled:
                raise  # still ours on the server: cancel() withdraws it
            except Lost:
                continue  # the server restarted and forgot it: submit again
            except Interrupted:
                if state != "queued":
                    server.running.pop(pid, None)
                    raise
                continue  # an adopted prompt that an earlier build's Ctrl-C interrupted: run it anew
            except BaseException:
                server.running.pop(pid, None)
                raise
            finally:
                server.events.forget(pid)
                ctx.progress.row(f"shot {shot.id}", None)
            server.running.pop(pid, None)
            break
        else:
            raise ComfyError(f"{server.name} keeps losing the shot's prompt", retry=True)
        result = self._collect(server, entry, job, shot, timing, ctx, film.fps)
        seconds = time.monotonic() - started
        ran = execution_seconds(entry)
        result.record.update({"server": server.name, "prompt_id": pid, "seconds": round(seconds, 3),
                              "execution_seconds": ran})
        return Outcome(job, server.name, pid, entry={"result": result}, seconds=ran or 0.0)

    def _submit(self, server: Server, graph: dict, pid: str, shot: Shot) -> str:
        extra = {"extra_pnginfo": {"storylang": {"shot": shot.id, "file": shot.where.file, "line": shot.where.line}}}
        try:
            reply = server.client.submit(graph, pid, server.events.client_id, extra)
        except ComfyError as e:
            if e.status == 400 and isinstance(e.body, dict):
                raise ShotFailed(*describe_node_errors(e.body, graph)) from e
            raise
        if reply.get("node_errors"):
            raise ShotFailed(*describe_node_errors(reply, graph))
        got = str(reply.get("prompt_id") or pid)
        if got != pid:  # an old server chose its own id: follow that one
            server.events.forget(pid)
            server.events.watch(got)
        return got

    def _upload(self, server: Server, job: Job, ctx: RenderContext, fps: Fraction) -> None:
        """Each input once per server, under its digest name; the server is asked first."""
        for gi in job.inputs[server.name]:
            if gi.name in server.uploaded:
                continue
            # a render made first is uploaded from the cache, under the name its graph gave it
            if gi.made_by:
                made = self.made[gi.made_by]
                data = last_frame(made, ctx).read_bytes() if gi.last_frame else made.file.read_bytes()
            else:
                data = input_bytes(gi, ctx, fps)
            sub, _, name = gi.name.rpartition("/")
            have = server.client.fetch_input(name, sub)
            if have != data:
                reply = server.client.upload(name, data, sub)
                if reply.get("name") != name:
                    raise ShotFailed(f"{server.name} stored {gi.file} as {reply.get('name')!r}, not {name!r}",
                                     "another file has that name in its input/storylang folder: remove it")
            server.uploaded.add(gi.name)

    def _show(self, server: Server, shot: Shot, kind: str, data: dict, ctx: RenderContext) -> None:
        """A running shot's row: server, node, step n/m and an ETA from its step rate."""
        row = f"shot {shot.id}"
        if kind == "progress":
            now = time.monotonic()
            value, top = data.get("value", 0), data.get("max", 0)
            first = self.steps.setdefault((row, data.get("node")), (now, value))
            done = value - first[1]
            eta = f", about {(top - value) * (now - first[0]) / done:.0f}s left" if done > 0 else ""
            ctx.progress.row(row, f"{server.name}: node {data.get('node')} step {value}/{top}{eta}")
        elif kind == "executing" and data.get("node"):
            ctx.progress.row(row, f"{server.name}: node {data.get('node')}")
        elif kind == "execution_cached" and data.get("nodes"):
            ctx.progress.row(row, f"{server.name}: {len(data['nodes'])} nodes cached on the server")

    def _show_server(self, server: Server, ctx: RenderContext) -> None:
        ours = ", ".join(sorted(set(server.running.values()))) or "none"
        ctx.progress.row(f"server {server.name}", f"queue {server.queue_remaining} (ours: shots {ours})")

    # ------------------------------------------------------------------ outputs

    def _collect(self, server: Server, entry: dict, job: Job, shot: Shot, timing: Timing,
                 ctx: RenderContext, fps: Fraction) -> Result:
        if shot.id.startswith("music."):
            return self._collect_audio(server, entry, job, shot, ctx)
        files = [f for f in output_files(entry) if f[0].lower().endswith(VIDEO_SUFFIXES + IMAGE_SUFFIXES)]
        if not files:
            raise ShotFailed("the server finished the shot but reports no image or video output",
                             "the shot's template must end in a node that saves an image or a video")
        pick = next((f for f in files if f[0].lower().endswith(VIDEO_SUFFIXES)), files[0])  # a video is the shot
        name, sub, kind = pick
        suffix = Path(name).suffix.lower()
        is_video = suffix in VIDEO_SUFFIXES
        key = job.keys[server.name]
        target = ctx.cache.path("renders", key, ".mp4" if is_video and suffix != ".gif" else suffix)
        server.client.view(name, sub, kind, target, VIDEO_LIMIT if is_video else IMAGE_LIMIT)
        record = {"stage": STAGE_VERSION, "shot": shot.id, "graph": key, "seed": shot.render.seed,
                  "output": {"name": name, "sha256": file_digest(target)}}
        want = timing.shots[shot.id].frames
        note = None
        try:
            if is_video:
                n, got = video_frames(target, fps)
                record["frames"] = n
                if got > want:
                    note = f"shot {shot.id}: the render lasts {got} frames, trimmed to {want}"
                elif got < want:
                    note = f"shot {shot.id}: the render lasts {got} frames; its last frame is held for {want - got}"
            else:
                with Image.open(target) as im:
                    im.verify()
                with Image.open(target) as im:
                    record["size"] = list(im.size)
        except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            target.unlink(missing_ok=True)
            raise ShotFailed(f"the output {name} from {server.name} is not a readable "
                             f"{'video' if is_video else 'image'} ({e})") from e
        record["note"] = note
        atomic.write_text(target.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
        return Result(target, "video" if is_video else "still", record, note)

    def _collect_audio(self, server: Server, entry: dict, job: Job, shot: Shot, ctx: RenderContext) -> Result:
        """A generated music cue: the audio file the graph saved, checked readable, in the cache."""
        files = [f for f in output_files(entry) if f[0].lower().endswith(AUDIO_SUFFIXES)]
        if not files:
            raise ShotFailed("the server finished the music but reports no audio output",
                             "the music template must end in a node that saves audio (SaveAudio)")
        name, sub, kind = files[0]
        key = job.keys[server.name]
        target = ctx.cache.path("renders", key, Path(name).suffix.lower())
        server.client.view(name, sub, kind, target, VIDEO_LIMIT)
        wrong = probe.problem(target, "audio")
        if wrong:
            target.unlink(missing_ok=True)
            raise ShotFailed(f"the output {name} from {server.name} {wrong}")
        record = {"stage": STAGE_VERSION, "shot": shot.id, "graph": key, "seed": shot.render.seed,
                  "output": {"name": name, "sha256": file_digest(target)}, "note": None}
        atomic.write_text(target.with_suffix(".json"), json.dumps(record, indent=2, sort_keys=True) + "\n")
        return Result(target, "audio", record, None)

    # ------------------------------------------------------------------ the end

    def _finish(self, film, timing, ctx, live, graphs, missing, results, failures, outcomes, reused, submitted):
        pictures: dict[str, ShotPicture] = {}
        notes, diags = [], []
        for sid, result in results.items():
            pictures[sid] = picture_of(result, ctx.root)
            if result.note:
                notes.append(result.note)
        by_id = {s.id: s for s in film.shots}
        for sid, (message, hint, server) in failures.items():
            shot = by_id[sid]
            diags.append(Diagnostic(severity="error", code="render-failed", file=shot.where.file,
                                    span=shot.where.span(4), hint=hint,
                                    message=f"shot {sid} failed" + (f" on {server}" if server else "") + f": {message}"))
        for sid, problems in missing.items():
            notes.append(f"shot {sid}: no server can run its graph; drawn as an animatic card")
        if diags and self.settings.strict:
            raise StoryError(diags)
        fallback = {s.id for s in film.shots if s.id not in pictures}
        cards = AnimaticRenderer().render(film, timing, ctx, only=fallback)
        pictures.update(cards.pictures)
        for sid in sorted(fallback - set(missing), key=lambda s: list(by_id).index(s)):
            notes.append(f"shot {sid}: drawn as an animatic card (its render failed)")
        self._manifest(film, ctx, live, results)
        if ctx.build_dir is not None:  # the board shows them; storyc sheets writes the same files
            publish_sheets({uid.removeprefix("sheet."): r for uid, r in self.made.items() if uid.startswith("sheet.")},
                           ctx.build_dir / "sheets")
        made = len([1 for sid in results if sid in outcomes])
        used = sum(o.seconds for o in outcomes.values() if o.entry)  # execution time on the servers
        notes[:0] = ([f"ComfyUI server set aside: {why}" for why in self.trouble]
                     + [f"ComfyUI server lost during the build: {why}; its shots went to the others"
                        for why in self.lost])
        waited = sum(1 for sid in failures if sid in self.blocked)
        notes.insert(0, f"ComfyUI: {made} rendered, {reused} cached, {len(failures)} failed"
                        + (f" ({waited} of them read a render that failed)" if waited else "") + ", "
                        f"{len(missing)} skipped on {', '.join(lv.server.name for lv in live)}; "
                        f"{used:.1f} GPU-seconds")
        return Rendered(pictures=pictures, made=made, reused=reused, labels_drawn=cards.labels_drawn,
                        notes=notes, failures=diags)

    def _manifest(self, film: Film, ctx: RenderContext, live: list[Live], results: dict) -> None:
        if ctx.build_dir is None:
            return
        info = {lv.server.name: {"comfyui_version": lv.version, "object_info": lv.info_digest} for lv in live}
        shots = {}
        for shot in film.shots:
            result = results.get(shot.id)
            if result is None:
                continue
            rec = dict(result.record)
            server = rec.get("server")
            if server in info:
                rec.update(info[server])
            made = {up: r.record for up, r in self.made.items() if shot.id in self.readers.get(up, ())}
            if made:  # the renders it read, made first: its start still, its cast's sheets
                rec["made_first"] = made
            shots[shot.id] = rec
        manifest = {"version": 1, "renderer": "comfy", "shots": shots}
        atomic.write_text(ctx.build_dir / "renders.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")


class Journal:
    """shot → server → prompt id → state, rewritten atomically on every change (None: a dry run)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.lock = threading.Lock()
        self.entries: dict = {}
        if path is not None and path.is_file():
            try:
                self.entries = json.loads(path.read_text(encoding="utf-8")).get("shots", {})
            except ValueError:
                self.entries = {}

    def server_of(self, job: Job) -> str | None:
        """The server a killed build left this very prompt on, to adopt it there."""
        e = self.entries.get(job.shot_id) or {}
        server = e.get("server")
        return server if e.get("state") == "submitted" and job.keys.get(server) == e.get("key") else None

    def set(self, job: Job, server: str, prompt_id: str, state: str) -> None:
        self._write(job.shot_id, {"key": job.keys[server], "server": server, "prompt_id": prompt_id, "state": state})

    def cancel(self, job: Job) -> None:
        e = self.entries.get(job.shot_id)
        if e and e.get("state") == "submitted":
            self._write(job.shot_id, {**e, "state": "cancelled"})

    def _write(self, shot_id: str, entry: dict) -> None:
        with self.lock:
            self.entries[shot_id] = entry
            if self.path is not None:
                atomic.write_text(self.path, json.dumps({"version": 1, "shots": self.entries}, indent=2,
                                                        sort_keys=True) + "\n")


def execution_seconds(entry: dict) -> float | None:
    """How long the server ran the prompt (execution_start to its end), from the history's timestamps."""
    stamps = {kind: data.get("timestamp") for kind, data in (entry.get("status") or {}).get("messages", [])
              if isinstance(data, dict)}
    start, end = stamps.get("execution_start"), stamps.get("execution_success")
    return round((end - start) / 1000, 3) if isinstance(start, int) and isinstance(end, int) else None


def cached_render(cache: Cache, graphs: dict[str, ShotGraph]) -> Result | None:
    """A stored render of any of the shot's graphs (one per distinct server node list)."""
    for sg in graphs.values():
        found = find_cached(cache, render_key(sg.graph))
        if found:
            return found
    return None


def render_key(graph: dict) -> str:
    """A render's cache key: the canonical graph (inputs appear in it by content digest) and our version."""
    return digest({"stage": STAGE_VERSION, "graph": json.loads(graph_json(graph))})


def find_cached(cache: Cache, key: str) -> Result | None:
    record_file = cache.path("renders", key, ".json")
    if not record_file.is_file():
        return None
    try:
        record = json.loads(record_file.read_text(encoding="utf-8"))
    except ValueError:
        return None
    for suffix in (".mp4", *IMAGE_SUFFIXES, ".gif", ".webm", *AUDIO_SUFFIXES):
        path = cache.path("renders", key, suffix)
        if path.is_file() and file_digest(path) == record.get("output", {}).get("sha256"):
            kind = "audio" if suffix in AUDIO_SUFFIXES else "video" if suffix in VIDEO_SUFFIXES else "still"
            return Result(path, kind, record, record.get("note"))
    return None


def models_of(graph: dict) -> tuple[str, ...]:
    """The model files a graph loads: shots that share them run back to back on one server."""
    names = []
    for node in graph.values():
        for (ct, name) in MODEL_FOLDERS:
            if node.get("class_type") == ct and isinstance(node.get("inputs", {}).get(name), str):
                names.append(node["inputs"][name])
    return tuple(sorted(set(names)))


def output_files(entry: dict) -> list[tuple[str, str, str]]:
    """(filename, subfolder, type) of every file in a history entry's outputs, checked, in node order."""
    files = []
    for nid in sorted(entry.get("outputs") or {}):
        for key, items in sorted(entry["outputs"][nid].items()):
            if not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, dict) and "filename" in item:
                    files.append(safe_output_name(item))
    return files


def input_bytes(gi: GraphInput, ctx: RenderContext, fps) -> bytes:
    """The bytes uploaded for an input: the file, for a clip its explicit trim, for a shot's dialogue
    its lines mixed at their times (both made once, cached)."""
    if gi.dialogue:
        return dialogue_wav(gi, ctx, fps).read_bytes()
    source = ctx.root / gi.file
    if gi.kind != "video" or gi.frames is None:
        return source.read_bytes()
    trimmed = ctx.cache.path("inputs", gi.name.rpartition("/")[2].rsplit(".", 1)[0], ".mp4")
    if not trimmed.is_file():
        trim_clip(source, trimmed, gi.start, gi.frames, fps)
    return trimmed.read_bytes()


def publish_sheets(sheets: dict[str, Result], target: Path) -> dict[str, Path]:
    """Each character's sheet copied to target/NAME.png (a name made safe for a file name)."""
    from storylang.filenames import safe_stem

    written = {}
    for name, result in sorted(sheets.items()):
        out = target / f"{safe_stem(name)}{result.file.suffix}"
        data = result.file.read_bytes()
        if not (out.is_file() and out.read_bytes() == data):
            atomic.write_bytes(out, data)
        written[name] = out
    return written


def picture_of(result: Result, root: Path) -> ShotPicture:
    """A render as the edit list takes it: a video clip from its first frame, or a still."""
    src = rel(result.file, root)
    return ShotPicture("video", (src,), 0) if result.kind == "video" else ShotPicture("still", (src,))


def _reads(by_server: dict[str, ShotGraph]) -> list[str]:
    """The renders a render reads (its start still, the shot it continues, its cast's sheets)."""
    return list(dict.fromkeys(up.shot.id for sg in by_server.values() for up in sg.upstream))


def last_frame(made: Result, ctx: RenderContext) -> Path:
    """A render's last frame as a PNG (the first frame of the shot that continues it): the image
    itself for a still; for a video, its last frame, extracted once and cached."""
    if made.kind != "video":
        return made.file
    target = ctx.cache.path("inputs", f"last_{file_digest(made.file)[:20]}", ".png")
    if target.is_file():
        return target
    with atomic.atomic_path(target, suffix=".png") as tmp:
        # every frame overwrites the one before: what stays is the last
        proc = subprocess.run([find_ffmpeg().path, "-v", "error", "-y", "-i", str(made.file), "-update", "1",
                               "-f", "image2", "-c:v", "png", str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0 or not Path(tmp).is_file():
            raise ShotFailed(f"the last frame of {made.file.name} could not be read: {proc.stderr.strip()[-200:]}")
    return target


def dialogue_wav(gi: GraphInput, ctx: RenderContext, fps: Fraction) -> Path:
    """A shot's lines as one mono 16 kHz WAV as long as the shot, each line at its offset: the sound
    a sound-to-video model moves the speaker's lips to."""
    target = ctx.cache.path("inputs", gi.name.rpartition("/")[2].rsplit(".", 1)[0], ".wav")
    if target.is_file():
        return target
    missing = [key for key, _ in gi.dialogue if key not in ctx.spoken]
    if missing:
        raise ShotFailed(f"the shot's lines are not spoken yet ({', '.join(missing)})", "build the film again")
    ff = find_ffmpeg()
    seconds = Fraction(gi.frames or 0) / fps
    args = [ff.path, "-v", "error", "-y"]
    for key, _ in gi.dialogue:
        args += ["-i", str(ctx.spoken[key])]
    delays = ";".join(f"[{i}:a]aresample=16000,adelay={round(Fraction(offset) / fps * 1000)}:all=1[a{i}]"
                      for i, (_, offset) in enumerate(gi.dialogue))
    mix = "".join(f"[a{i}]" for i in range(len(gi.dialogue)))
    graph = f"{delays};{mix}amix=inputs={len(gi.dialogue)}:normalize=0,apad,atrim=0:{float(seconds):.6f}[out]"
    with atomic.atomic_path(target, suffix=".wav") as tmp:
        proc = subprocess.run(args + ["-filter_complex", graph, "-map", "[out]", "-ac", "1", "-ar", "16000",
                                      "-c:a", "pcm_s16le", "-f", "wav", str(tmp)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ShotFailed(f"the shot's dialogue could not be mixed: {proc.stderr.strip()[-200:]}")
    return target


def trim_clip(source: Path, target: Path, start: int, frames: int, fps: Fraction) -> None:
    """`frames` frames from frame `start` at the film's rate (the last frame held if the clip is short)."""
    ff = find_ffmpeg()
    with atomic.atomic_path(target, suffix=".mp4") as tmp:
        args = [ff.path, "-v", "error", "-y", "-ss", f"{start * fps.denominator / fps.numerator:.6f}",
                "-i", str(source), "-an", "-vf",
                f"fps={fps.numerator}/{fps.denominator},tpad=stop_mode=clone:stop={frames},trim=end_frame={frames}",
                "-c:v", "libx264", "-crf", "12", "-preset", "fast", "-pix_fmt", "yuv420p", "-f", "mp4", str(tmp)]
        proc = subprocess.run(args, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ShotFailed(f"cannot trim {source.name}: {proc.stderr.strip().splitlines()[-1:]}")


def video_frames(path: Path, fps: Fraction) -> tuple[int, int]:
    """(frames in the file, its length in frames at the film's rate `fps`); ValueError if it has none."""
    ff = find_ffmpeg()
    proc = subprocess.run([ff.path, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                          capture_output=True, text=True)
    found = re.findall(r"frame=\s*(\d+)", proc.stderr)
    rate = re.search(r"Video:.*?([\d.]+) fps", proc.stderr)
    if proc.returncode != 0 or not found or int(found[-1]) == 0:
        raise ValueError("no video frames")
    n = int(found[-1])
    own = Fraction(rate.group(1)).limit_denominator(1001) if rate else fps
    return n, round(n * fps / own)


def _dedupe(missing: dict[str, list[Diagnostic]]) -> list[Diagnostic]:
    seen, out = set(), []
    for diags in missing.values():
        for d in diags:
            k = (d.file, d.span, d.message)
            if k not in seen:
                seen.add(k)
                out.append(d)
    return out


def per_server(live: list[Live], compile_on) -> tuple[dict[str, dict[str, ShotGraph]], dict[str, list[Diagnostic]]]:
    """Renders that are not shots (sheets, music), compiled for each server's nodes by
    `compile_on(info)`: id → server → its graph, and the errors of those no server can run."""
    per: dict[str, dict[str, ShotGraph]] = {}
    problems: dict[str, list[Diagnostic]] = {}
    for lv in live:
        for sg in compile_on(lv.info):
            errors = [d for d in sg.diagnostics if d.severity == "error"]
            if sg.graph is not None and not errors:
                per.setdefault(sg.shot.id, {})[lv.server.name] = sg
            else:
                problems.setdefault(sg.shot.id, []).extend(errors)
    return per, {uid: diags for uid, diags in problems.items() if uid not in per}


def _at(shot: Shot) -> str:
    return f"{shot.where.file}:{shot.where.line}"
