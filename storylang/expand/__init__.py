"""The expansion stage: resolved shots → an LLM-written positive and negative prompt per shot,
pinned in `FILE.story.lock`. It sits between resolve and compile and gives the graph compiler
prompts only; the film does not change.

A shot is expanded when the script says `expand on` (or an instruction) for it, its scene or
the film, or the build has `--expand` and the script says nothing; `expand off` always wins.
A lock entry whose key (the digest of the request) matches is used without any request,
whether or not the shot asks for expansion; a missing or stale one is asked for only when the
shot asks for expansion and requests are allowed. See docs/expand.md.
"""

from __future__ import annotations

import os
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

from storylang import config, trust, waiting
from storylang.diagnostics import Diagnostic, StoryError
from storylang.expand import book as book_mod
from storylang.expand import lock as lock_mod
from storylang.expand.llm import OPENAI_URL, Endpoint, LlmError, ask, connect, untrusted_notice
from storylang.expand.request import DEFAULT_MODEL, Request, ShotPrompt, message_env, shot_request
from storylang.film import Film, Shot
from storylang.progress import Progress


@dataclass(frozen=True)
class Expanded:
    """The prompts the graph compiler uses for one shot instead of assembling the script's words."""

    positive: str
    negative: str
    camera: str
    key: str
    model: str
    origin: str  # "lock" (read from it) or "asked" (answered in this run, now in it)
    lock: str  # the lockfile's name


@dataclass
class Expansion:
    prompts: dict[str, Expanded] = field(default_factory=dict)
    asked: int = 0  # requests made
    reused: int = 0  # shots answered from the lock
    notes: list[str] = field(default_factory=list)  # one line each, for the summary
    problems: list[Diagnostic] = field(default_factory=list)  # per shot, at its line
    changed: list[tuple[Shot, lock_mod.Entry | None, lock_mod.Entry]] = field(default_factory=list)
    would_ask: list[Shot] = field(default_factory=list)  # a dry run: shots that would be asked for
    dropped: list[str] = field(default_factory=list)  # lock entries of shots the film no longer has
    stale: list[Shot] = field(default_factory=list)  # shots whose lock entry no longer matches


class ExpandFailed(StoryError):
    """`--locked` with entries missing, or `storyc expand` with answers missing: per-shot diagnostics."""


@dataclass
class Options:
    expand: bool = False  # --expand: shots whose script says nothing are expanded too
    locked: bool = False  # --locked: make no request; a shot wanting one is an error
    requests: bool = True  # False: a dry run, or a command that only reads the lock
    only: set[str] | None = None  # storyc expand --shot
    refresh: bool = False  # ask again even where the lock answers
    required: bool = False  # storyc expand: a failed request is an error, not a note
    jobs: int = 4


def endpoint(film: Film | None, script: Path) -> Endpoint:
    """The script header's `llm`, else storyc.toml's [llm], else the openai package's variables."""
    settings, _ = config.llm_settings(script)
    model = settings.get("model", DEFAULT_MODEL)
    base_url = settings.get("base_url")
    if film is not None and film.llm is not None:
        model = film.llm.model
        base_url = film.llm.server or base_url
    # the script and storyc.toml may come from a stranger: only a server the user named or allowed
    # gets the key (with the package's own default, OPENAI_BASE_URL or OpenAI's, the user chose)
    trusted = base_url is None or trust.server_trusted(base_url, (os.environ.get("OPENAI_BASE_URL", ""), OPENAI_URL))
    return Endpoint(model=model, base_url=base_url, key_env=settings.get("key_env", "OPENAI_API_KEY"),
                    timeout=float(settings.get("timeout", 120)), retries=int(settings.get("retries", 4)),
                    trusted=trusted)


def prompt_book(script: Path) -> tuple[list[dict], Path | None]:
    settings, where = config.llm_settings(script)
    if "book" not in settings:
        return [], None
    path = (where / settings["book"]).resolve()
    reads = trust.reads_for(script)
    if not reads.allows(path):
        raise config.ConfigError(f"{where / config.NAME}: [llm] book = {settings['book']!r} is outside the project; "
                                 f"{trust.outside_hint(reads)}")
    return book_mod.load(path), path


def wants(shot: Shot, flag: bool) -> bool:
    return shot.expand.on if shot.expand is not None else flag


def requests_of(film: Film, script: Path, ep: Endpoint) -> dict[str, Request]:
    """Every shot's request, by shot id (shots that say `expand off` have none)."""
    env = message_env(script.resolve().parent / "templates")
    book, _ = prompt_book(script)
    out = {}
    for shot in film.shots:
        if shot.expand is not None and not shot.expand.on:
            continue
        examples = book_mod.closest(book, " ".join((shot.action, shot.setting, shot.lighting, shot.mood)))
        out[shot.id] = shot_request(film, shot, env, ep.model, examples)
    return out


def expand_film(film: Film, script: Path, opts: Options, progress: Progress | None = None) -> Expansion:
    progress = progress or Progress()
    ep = endpoint(film, script)
    path = lock_mod.lock_path(script)
    lock = lock_mod.read(path)
    requests = requests_of(film, script, ep)
    result = Expansion()
    new = lock_mod.Lock(lines=lock.lines)  # the speech stage's lines are kept as they are
    to_ask: list[tuple[Shot, Request]] = []
    for shot in film.shots:
        request = requests.get(shot.id)
        if request is None:
            continue
        found = lock.find(shot.id, request.key)
        chosen = opts.only is None or shot.id in opts.only
        if found is not None and not (opts.refresh and chosen):
            entry = _entry_for(shot, found, script.resolve().parent)
            new.entries[shot.id] = entry
            result.prompts[shot.id] = _expanded(entry, "lock", path)
            result.reused += 1
        elif chosen and (wants(shot, opts.expand) or opts.only is not None or opts.required):
            to_ask.append((shot, request))
            if shot.id in lock.entries:
                new.entries[shot.id] = lock.entries[shot.id]  # until a new answer replaces it
        elif shot.id in lock.entries:
            new.entries[shot.id] = lock.entries[shot.id]  # kept for when the shot asks again
            if opts.locked:
                to_ask.append((shot, request))  # stale: the lock no longer pins this shot's prompt
            else:
                result.stale.append(shot)
                result.notes.append(f"shot {shot.id}: its lock entry is stale (the shot changed); "
                                    f"it uses the script's words until `storyc expand {script.name}`")
    if opts.locked and to_ask:
        raise ExpandFailed([_unlocked(shot, path) for shot, _ in to_ask], {})
    if to_ask and not opts.requests:
        result.would_ask = [shot for shot, _ in to_ask]
    elif to_ask:
        _ask_all(film, script, ep, to_ask, lock, new, result, opts, progress, path)
    result.dropped = sorted(set(lock.entries) - {s.id for s in film.shots})
    if opts.required or result.asked:
        _write(path, new, film, script)
    return result


def _write(path: Path, new: lock_mod.Lock, film: Film, script: Path) -> None:
    """Write the lock in film order; entries of shots that are gone are dropped."""
    ordered = lock_mod.Lock({s.id: new.entries[s.id] for s in film.shots if s.id in new.entries}, new.lines)
    if not ordered.entries and not ordered.lines and not path.exists():
        return  # nothing to pin: no empty lockfile beside the script
    lock_mod.write(path, ordered, script.name)


def _entry_for(shot: Shot, found: lock_mod.Entry, root: Path) -> lock_mod.Entry:
    """The lock entry of this shot; another shot's answer to the same request is shared."""
    return lock_mod.Entry(**{**found.__dict__, "id": shot.id, "where": where(shot, root)})


def where(shot: Shot, root: Path) -> str:
    """file:line of the shot, the file named relative to the film's folder (the lock travels with it)."""
    return lock_mod.file_line(shot.where, root)


def _expanded(entry: lock_mod.Entry, origin: str, path: Path) -> Expanded:
    return Expanded(positive=entry.positive, negative=entry.negative, camera=entry.camera, key=entry.key,
                    model=entry.model, origin=origin, lock=path.name)


def _unlocked(shot: Shot, path: Path) -> Diagnostic:
    return Diagnostic(severity="error", code="unlocked", file=shot.where.file, span=shot.where.span(4),
                      message=f"shot {shot.id} wants an expanded prompt and {path.name} has none for it as it is now",
                      hint=f"run storyc expand {Path(shot.where.file).name} and commit {path.name} "
                           "(--locked makes no requests)")


def _ask_all(film, script, ep: Endpoint, to_ask, old: lock_mod.Lock, new: lock_mod.Lock, result: Expansion,
             opts: Options, progress: Progress, path: Path) -> None:
    """Ask for every distinct request, `opts.jobs` at a time; each answer is written to the lock
    as it arrives, so an interrupted run keeps what it was given."""
    try:
        client = connect(ep)
    except LlmError as e:
        _no_requests(e, to_ask, result, opts)
        return
    notice = untrusted_notice(ep)
    if notice:
        result.notes.append(notice)
    by_key: dict[str, list[Shot]] = {}
    for shot, request in to_ask:
        by_key.setdefault(request.key, []).append(shot)
    bodies = {request.key: request for _, request in to_ask}
    progress.stage("expand", len(by_key))
    answers: queue.Queue = queue.Queue()
    work: queue.Queue = queue.Queue()
    for key in by_key:
        work.put(key)

    stop = threading.Event()  # an endpoint failure: no worker starts another request

    def worker() -> None:
        while not stop.is_set():
            try:
                key = work.get_nowait()
            except queue.Empty:
                return
            shots = by_key[key]
            label = f"shot {shots[0].id}"
            progress.row(label, f"asking {ep.model}")
            try:
                answers.put((key, ask(client, ep, bodies[key].body(), ShotPrompt, label), None))
            except LlmError as e:
                if e.endpoint:
                    stop.set()
                answers.put((key, None, e))
            finally:
                progress.row(label, None)

    # daemon threads: Ctrl-C ends the run at once, with the lock as the last answer left it
    for _ in range(min(max(opts.jobs, 1), len(by_key))):
        threading.Thread(target=worker, daemon=True).start()
    outstanding = len(by_key)
    stopped: LlmError | None = None
    while outstanding:
        key, answer, error = waiting.get(answers)
        outstanding -= 1
        progress.advance()
        result.asked += 1
        if error is not None and error.endpoint:
            outstanding -= _drain(work)  # no further request can succeed
            stopped = stopped or error
            continue
        if error is not None:
            _failed(error, by_key[key], result, opts)
            continue
        for shot in by_key[key]:
            entry = lock_mod.Entry(id=shot.id, key=key, positive=answer.value.positive,
                                   negative=answer.value.negative, camera=answer.value.camera,
                                   where=where(shot, script.resolve().parent), base_url=ep.shown,
                                   model=answer.model, system_fingerprint=answer.fingerprint, format=answer.format)
            result.changed.append((shot, old.entries.get(shot.id), entry))
            new.entries[shot.id] = entry
            result.prompts[shot.id] = _expanded(entry, "asked", path)
        _write(path, new, film, script)
    if stopped is not None:
        _no_requests(stopped, [shot for shot, _ in to_ask if shot.id not in result.prompts], result, opts)


def _drain(work: queue.Queue) -> int:
    """Take the requests no worker has started; how many there were."""
    n = 0
    while True:
        try:
            work.get_nowait()
            n += 1
        except queue.Empty:
            return n


def _no_requests(e: LlmError, to_ask, result: Expansion, opts: Options) -> None:
    if opts.required:
        raise e
    result.notes.append(f"{e}; {len(to_ask)} shot{'s' if len(to_ask) != 1 else ''} use the script's words")


def _failed(e: LlmError, shots: list[Shot], result: Expansion, opts: Options) -> None:
    for shot in shots:
        result.problems.append(Diagnostic(
            severity="error" if opts.required else "warning", code="expand", file=shot.where.file,
            span=shot.where.span(4), message=f"shot {shot.id}: {e}" if not str(e).startswith("shot ") else str(e),
            hint=None if opts.required else "the shot uses the script's words for now"))


def diff(shot: Shot, before: lock_mod.Entry | None, after: lock_mod.Entry) -> str:
    """What an answer changed, as a unified diff of the shot's prompts ("" when nothing did)."""
    import difflib
    import textwrap

    def lines(e: lock_mod.Entry | None) -> list[str]:
        if e is None:
            return []
        out = []
        for name in ("positive", "negative", "camera"):
            out += textwrap.wrap(getattr(e, name), 88, initial_indent=f"{name}: ", subsequent_indent="    ") \
                or [f"{name}:"]
        return [line + "\n" for line in out]

    old, new = lines(before), lines(after)
    if old == new:
        return ""
    at = after.where or f"{shot.where.file}:{shot.where.line}"
    return "".join(difflib.unified_diff(old, new, f"shot {shot.id} ({at}) in the lock",
                                        f"shot {shot.id} ({at}) as answered now"))


def lock_warnings(film: Film, script: Path, expand_flag: bool = False) -> list[Diagnostic]:
    """What `storyc check` says of the lock, making no request: stale entries, and shots that ask
    for expansion with no entry (the build will ask, or fail with --locked)."""
    if not lock_mod.lock_path(script).exists() and not any(s.expand is not None and s.expand.on for s in film.shots):
        return []
    result = expand_film(film, script, Options(expand=expand_flag, requests=False))
    lock = lock_mod.lock_path(script).name
    out = [Diagnostic(severity="warning", code="lock-stale", file=s.where.file, span=s.where.span(4),
                      message=f"shot {s.id}: its entry in {lock} no longer matches the shot (it changed)",
                      hint=f"run storyc expand {script.name}; until then it uses the script's words")
           for s in result.stale]
    out += [Diagnostic(severity="warning", code="lock-missing", file=s.where.file, span=s.where.span(4),
                       message=f"shot {s.id} asks for an expanded prompt that {lock} does not have yet",
                       hint=f"storyc expand {script.name} asks for it (a build with --locked fails here)")
            for s in result.would_ask]
    return out
