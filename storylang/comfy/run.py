"""Running graphs on a pool of ComfyUI servers: submit, follow, adopt, retry, cancel.

Each server gets a websocket (one client id per server and build) read by a thread that
hands every event to the prompt it is about; the websocket is a hint: when it is silent,
`/history/{id}` and `/queue` say what happened (history is `{}` both before completion and
for an unknown id; the queue tells them apart). A shot that makes no progress for `stall`
seconds while running is given up, however long it has run: a long video that keeps
reporting steps is alive. Prompt ids are derived from the graph's digest, so before
submitting we ask the server whether it already ran or is running that very prompt (a
resumed build adopts it instead of submitting it again).
"""

from __future__ import annotations

import json
import queue as queue_mod
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from storylang.comfy.client import Client, ComfyError, prompt_id_for
from storylang.render import Cancelled


class ShotFailed(Exception):
    """The server ran (or refused) the shot and said why; not worth retrying elsewhere."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.hint = hint


class Interrupted(ShotFailed):
    """Someone (perhaps our own Ctrl-C of an earlier build) interrupted the prompt on the server."""


class Lost(Exception):
    """The server no longer knows the prompt (restarted with an empty history): submit it again."""


OOM_WORDS = ("out of memory", "allocation on device", "cuda oom", "hip out of memory", "mps backend out of memory")


def describe_node_errors(body: dict, graph: dict) -> tuple[str, str | None]:
    """A validation reply (HTTP 400 or node_errors) as one sentence: node class, input, the server's words."""
    parts = []
    for nid, entry in sorted((body.get("node_errors") or {}).items()):
        ct = entry.get("class_type") or graph.get(nid, {}).get("class_type", "?")
        for err in entry.get("errors", []):
            name = (err.get("extra_info") or {}).get("input_name")
            detail = err.get("details") or ""
            parts.append(f'{ct} (node "{nid}")' + (f" input {name}" if name else "") + f": {err.get('message', '')}"
                         + (f" ({detail})" if detail else ""))
    hint = None
    if not parts:
        error = body.get("error") or {}
        if isinstance(error, dict) and error.get("type") == "missing_node_type":
            # 0.33: a node type the server does not have (0.3.64 said invalid_prompt)
            extra = error.get("extra_info") or {}
            ct = extra.get("class_type") or graph.get(str(extra.get("node_id")), {}).get("class_type") or "?"
            parts.append(f'{ct} (node "{extra.get("node_id", "?")}") is not installed on the server')
            hint = "install the custom node pack that provides it, or render this shot elsewhere (--skip-missing)"
        elif isinstance(error, dict):
            parts.append(error.get("message") or "the server refused the graph")
        else:
            parts.append(str(error))
    return "; ".join(parts), hint


def describe_execution_error(data: dict) -> tuple[str, str | None]:
    message = str(data.get("exception_message", "")).strip()
    text = f'{data.get("node_type", "?")} (node "{data.get("node_id", "?")}") failed: {message}'
    hint = None
    if any(w in message.lower() for w in OOM_WORDS):
        hint = "the server ran out of memory: lower the size, render fewer frames, or use --jobs 1 for that server"
    return text, hint


@dataclass
class Job:
    """One shot to render: its graph for each server that can run it, and what it needs loaded."""

    shot_id: str
    graphs: dict[str, dict]  # server name → graph (servers with other nodes may get another graph)
    keys: dict[str, str]  # server name → that graph's digest, the cache key of its render
    inputs: dict[str, list]  # server name → the GraphInputs its graph reads
    models: tuple[str, ...]  # checkpoint and LoRA files: what the server must have loaded
    prefer: str | None = None  # the server a killed build submitted it to
    after: tuple[str, ...] = ()  # jobs of this run whose output it reads, in its order: it waits for them
    chain: int = 1  # jobs on the longest path from it to the end of what waits on it (itself included)

    def prompt_id(self, server: str) -> str:
        return prompt_id_for(self.keys[server])


@dataclass
class Outcome:
    job: Job
    server: str
    prompt_id: str
    entry: dict | None = None  # the history entry of a success
    error: str | None = None
    hint: str | None = None
    seconds: float = 0.0


class Events:
    """A server's websocket, read on a thread; events go to the queue of the prompt they name."""

    def __init__(self, client: Client, client_id: str, on_status: Callable[[int], None] = lambda n: None):
        self.client = client
        self.client_id = client_id
        self.queues: dict[str, queue_mod.Queue] = {}
        self.lock = threading.Lock()
        self.on_status = on_status
        self.stopping = threading.Event()
        self.ws = None
        self.thread = threading.Thread(target=self._read, daemon=True, name=f"ws {client.name}")
        self.thread.start()

    def watch(self, prompt_id: str) -> queue_mod.Queue:
        with self.lock:
            return self.queues.setdefault(prompt_id, queue_mod.Queue())

    def forget(self, prompt_id: str) -> None:
        with self.lock:
            self.queues.pop(prompt_id, None)

    def close(self) -> None:
        self.stopping.set()
        ws = self.ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a broken socket
                pass

    def _read(self) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            try:
                self.ws = self.client.connect(self.client_id)
            except ComfyError:
                self.stopping.wait(delay + random.random() * delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.1
            self._pump()

    def _pump(self) -> None:
        import websocket

        self.ws.settimeout(1.0)
        while not self.stopping.is_set():
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (OSError, websocket.WebSocketException):
                return
            if not raw:
                return
            if isinstance(raw, bytes):  # a preview frame: not ours to show
                continue
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            data = msg.get("data") or {}
            if msg.get("type") == "status":
                self.on_status(((data.get("status") or {}).get("exec_info") or {}).get("queue_remaining", 0))
                continue
            pid = data.get("prompt_id")
            with self.lock:
                q = self.queues.get(pid)
            if q is not None:
                q.put((msg.get("type"), data))


@dataclass
class Server:
    client: Client
    inflight: int = 2
    events: Events | None = None
    failures: int = 0  # retryable failures in a row
    down: str | None = None  # why it was set aside
    loaded: tuple[str, ...] | None = None  # the models of the last shot it was given
    uploaded: set[str] = field(default_factory=set)
    queue_remaining: int = 0
    running: dict[str, str] = field(default_factory=dict)  # prompt id → shot id, ours only

    @property
    def name(self) -> str:
        return self.client.name


class Pool:
    """Jobs handed out to server slots, results collected. A job is handed out once the jobs it
    waits on are done: the longest remaining chain first (what waits on it decides the makespan),
    then by what each server has loaded. A failed job's dependents are not run (`blocked`)."""

    def __init__(self, servers: list[Server], jobs: list[Job], run: Callable[[Server, Job], Outcome],
                 max_failures: int = 3, backoff: float = 0.25, by_models: bool = True,
                 on_change: Callable[["Pool"], None] = lambda pool: None):
        self.servers = servers
        self.by_models = by_models  # False: in the script's order, whatever each server has loaded
        self.pending = list(jobs)
        self.run = run
        self.max_failures = max_failures
        self.backoff = backoff
        self.lock = threading.Condition()
        self.outcomes: dict[str, Outcome] = {}
        self.done: set[str] = set()  # jobs that succeeded
        self.blocked: dict[str, str] = {}  # job → the failed job it waited on (directly or not)
        self.running: set[str] = set()
        self.given: dict[str, int] = {}  # server → jobs handed to it and not finished
        self.busy = 0
        self.cancelled = threading.Event()
        self.on_change = on_change  # called (under the lock) when a job changes state
        chains(jobs)

    def counts(self) -> dict[str, int]:
        """Jobs per state: waiting on others, ready (queued here), running, done, failed."""
        waiting = sum(1 for j in self.pending if not self._ready(j))
        return {"waiting": waiting, "queued": len(self.pending) - waiting, "running": len(self.running),
                "done": len(self.done), "failed": len(self.outcomes) - len(self.done) + len(self.blocked)}

    def _runnable(self, server: Server, job: Job) -> bool:
        return server.name in job.graphs

    def _ready(self, job: Job) -> bool:
        return all(up in self.done for up in job.after)

    def _anyone(self, job: Job) -> bool:
        return any(self._runnable(s, job) for s in self.servers if not s.down)

    def _pick(self, server: Server) -> Job | None:
        """The next job for a server: its own resumed prompts, then among the ready jobs of the longest
        remaining chain, the models it has loaded, then those no other server has loaded, then any."""
        mine = [j for j in self.pending if self._runnable(server, j) and self._ready(j)]
        resumed = next((j for j in mine if j.prefer == server.name), None)
        if resumed is not None:
            return resumed
        if self.given.get(server.name):
            # a job queued ahead of the running one is chosen before it is due: only while nothing
            # left waits on another job (a chain's next link belongs on the first server to free),
            # and only what no idle server could start now
            if any(j.chain > 1 or j.after for j in self.pending):
                return None
            idle = [s for s in self.servers if not s.down and not self.given.get(s.name)]
            mine = [j for j in mine if not any(self._runnable(s, j) for s in idle)]
        if not mine:
            return None
        # a chain as long as the work left per server decides when the film is done: it goes first,
        # the longest first; shorter chains wait while the work is batched by loaded models
        alive = [s for s in self.servers if not s.down]
        left = (len(self.pending) + len(self.running)) / max(len(alive), 1)
        critical = [j for j in mine if j.chain + 2 >= left]
        if critical:
            longest = max(j.chain for j in critical)
            mine = [j for j in critical if j.chain == longest]
        if not self.by_models:
            return mine[0]
        others = {s.loaded for s in alive if s is not server and s.loaded}
        names = {s.name for s in alive}
        for test in (lambda j: j.prefer is None and j.models == server.loaded,
                     lambda j: j.prefer is None and j.models not in others,
                     lambda j: j.prefer is None or j.prefer not in names):
            found = next((j for j in mine if test(j)), None)
            if found:
                return found
        return None

    def _next(self, server: Server) -> Job | None:
        """Block until there is a job for this server; None when none can come (all done or given up)."""
        with self.lock:
            while True:
                if self.cancelled.is_set() or server.down:
                    return None
                job = self._pick(server)
                if job is not None:
                    self.pending.remove(job)
                    self.running.add(job.shot_id)
                    self.given[server.name] = self.given.get(server.name, 0) + 1
                    server.loaded = job.models
                    self.busy += 1
                    self.on_change(self)
                    return job
                if not self.busy and not any(self._runnable(server, j) for j in self.pending):
                    return None
                if not self.busy and not any(self._ready(j) and self._anyone(j) for j in self.pending):
                    return None  # nothing can become ready: the jobs left wait on servers set aside
                self.lock.wait(0.2)

    def _finished(self, job: Job, outcome: Outcome) -> None:
        """Under the lock: a job's outcome; the jobs waiting on a failed one are taken out, blocked."""
        self.outcomes[job.shot_id] = outcome
        if outcome.error is None:
            self.done.add(job.shot_id)
            return
        failed = {job.shot_id}
        while True:
            stuck = [j for j in self.pending if any(up in failed for up in j.after)]
            if not stuck:
                return
            for j in stuck:
                self.pending.remove(j)
                self.blocked[j.shot_id] = next(up for up in j.after if up in failed)
                failed.add(j.shot_id)

    def _slot(self, server: Server) -> None:
        while True:
            job = self._next(server)
            if job is None:
                return
            try:
                outcome = self.run(server, job)
                server.failures = 0
                with self.lock:
                    self._finished(job, outcome)
            except Cancelled:
                with self.lock:
                    self.pending.append(job)
            except ComfyError as e:
                self._server_trouble(server, job, e)
            finally:
                with self.lock:
                    self.busy -= 1
                    self.given[server.name] -= 1
                    self.running.discard(job.shot_id)
                    self.on_change(self)
                    self.lock.notify_all()

    def _server_trouble(self, server: Server, job: Job, e: ComfyError) -> None:
        """A retryable failure: back off and give the job back; a server failing again and again is set aside."""
        with self.lock:
            server.failures += 1
            job.prefer = None
            if server.failures >= self.max_failures and not server.down:
                server.down = str(e)
            self.pending.insert(0, job)
        if not server.down:
            wait = self.backoff * 2 ** (server.failures - 1)
            self.cancelled.wait(wait + random.random() * wait)

    def run_all(self, stop: threading.Event | None = None) -> dict[str, Outcome]:
        """Run every job; `stop` (a newer edit in watch mode) ends it like Ctrl-C does (Cancelled)."""
        threads = [threading.Thread(target=self._slot, args=(s,), daemon=True, name=f"slot {s.name} {i}")
                   for s in self.servers if not s.down for i in range(max(s.inflight, 1))]
        for t in threads:
            t.start()
        try:
            while any(t.is_alive() for t in threads):
                for t in threads:
                    t.join(0.2)
                if stop is not None and stop.is_set():
                    raise Cancelled()
        except BaseException:
            self.cancelled.set()
            with self.lock:
                self.lock.notify_all()
            raise
        return self.outcomes


def chains(jobs: list[Job]) -> None:
    """Each job's `chain`: itself plus the longest line of jobs that wait on it, one after another
    (from the last jobs back, so a chain of a thousand shots needs no deep recursion)."""
    ids = {j.shot_id for j in jobs}
    readers = {j.shot_id: 0 for j in jobs}  # how many jobs of this run wait on it
    for job in jobs:
        for up in set(job.after) & ids:
            readers[up] += 1
    by_id = {j.shot_id: j for j in jobs}
    for job in jobs:
        job.chain = 1
    ends = [j for j in jobs if readers[j.shot_id] == 0]
    while ends:
        job = ends.pop()
        for up in set(job.after) & ids:
            by_id[up].chain = max(by_id[up].chain, job.chain + 1)
            readers[up] -= 1
            if readers[up] == 0:
                ends.append(by_id[up])


def new_client_id() -> str:
    return uuid.uuid4().hex


def wait_for(server: Server, prompt_id: str, events, stall: float, poll: float, cancelled: threading.Event,
             on_event: Callable[[str, dict], None] = lambda kind, data: None) -> dict:
    """The history entry of a finished prompt; ShotFailed, Lost, Cancelled or ComfyError otherwise."""
    client = server.client
    last_sign = time.monotonic()
    while True:
        if cancelled.is_set():
            raise Cancelled()
        try:
            kind, data = events.get(timeout=poll)
        except queue_mod.Empty:
            kind, data = None, None
        if kind is not None:
            last_sign = time.monotonic()
            on_event(kind, data)
            if kind == "execution_error":
                raise ShotFailed(*describe_execution_error(data))
            if kind == "execution_interrupted":
                raise Interrupted(f"interrupted on the server at {data.get('node_type', '?')}"
                                  f' (node "{data.get("node_id", "?")}")', "someone interrupted it there; build again")
            if not (kind == "executing" and data.get("node") is None) and kind != "execution_success":
                continue
        entry = client.history(prompt_id)
        if entry:
            return _finished(entry)
        if kind is not None:
            continue  # success was announced before history was written: look again shortly
        state = client.job_status(prompt_id)
        if state is not None:  # 0.33: the jobs API tells queued from running from unknown, for this prompt alone
            if state == "pending":
                last_sign = time.monotonic()
            elif state == "in_progress":
                if time.monotonic() - last_sign > stall:
                    raise ComfyError(f"{client.name}: no progress on the shot for {stall:.0f}s", retry=True)
            elif state == "unknown":
                raise Lost()
            elif state == "cancelled":
                raise Interrupted("cancelled on the server", "someone cancelled it there; build again")
            continue  # finished: its history entry is read on the next turn
        q = client.queue()
        if any(item[1] == prompt_id for item in q.get("queue_pending", [])):
            last_sign = time.monotonic()  # waiting its turn is not a stall
        elif any(item[1] == prompt_id for item in q.get("queue_running", [])):
            if time.monotonic() - last_sign > stall:
                raise ComfyError(f"{client.name}: no progress on the shot for {stall:.0f}s", retry=True)
        else:
            entry = client.history(prompt_id)  # it may have finished between the two questions
            if entry:
                return _finished(entry)
            raise Lost()


def _finished(entry: dict) -> dict:
    status = entry.get("status") or {}
    if status.get("status_str") == "success":
        return entry
    for kind, data in status.get("messages", []):
        if kind == "execution_error":
            raise ShotFailed(*describe_execution_error(data))
        if kind == "execution_interrupted":
            raise Interrupted("interrupted on the server", "someone interrupted it there; build again")
    raise ShotFailed("the server reports an error without details")


def adopted(server: Server, prompt_id: str) -> str | None:
    """What the server knows of our prompt: "done" (a success in history), "queued", "stale" (a failed
    or interrupted run in history: delete it before submitting again, or polling would read it), or None."""
    entry = server.client.history(prompt_id)
    if entry and (entry.get("status") or {}).get("status_str") == "success":
        return "done"
    q = server.client.queue()
    items = q.get("queue_running", []) + q.get("queue_pending", [])
    if any(item[1] == prompt_id for item in items):
        return "queued"
    if not entry:  # it may have finished between the two questions
        entry = server.client.history(prompt_id)
        if entry and (entry.get("status") or {}).get("status_str") == "success":
            return "done"
    return "stale" if entry else None


def cancel(servers: list[Server]) -> None:
    """Ctrl-C: interrupt our running prompts and delete our queued ones; never anyone else's."""
    for server in servers:
        ours = set(server.running)
        if not ours:
            continue
        try:
            q = server.client.queue()
            pending = [item[1] for item in q.get("queue_pending", []) if item[1] in ours]
            if pending:
                server.client.delete(pending)
            for item in q.get("queue_running", []):
                if item[1] in ours:
                    server.client.interrupt(item[1])
        except ComfyError:
            pass
        server.running.clear()
