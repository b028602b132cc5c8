"""`storyc build`: resolve → speak → time → render → edit → assemble. The one orchestrator.

Every artifact is content-addressed (see cache.py): a rebuild with nothing changed does
no work and says so; an edit redoes exactly what depends on it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path

from storylang import __version__, assemble, atomic, builddir, explain, mix, music, provenance, stamp, waiting
from storylang import output as output_mod
from storylang.check import no_shots
from storylang import speech as speech_mod
from storylang import speechlock
from storylang.expand import lock as lock_mod
from storylang.render import Cancelled, RenderContext, camera, rel, stills
from storylang.render.animatic import AnimaticRenderer
from storylang.builddir import build_root, film_dir
from storylang.filenames import film_folder
from storylang.cache import Cache, digest, file_digest
from storylang.diagnostics import Diagnostic, StoryError, did_you_mean
from storylang.film import Film
from storylang.progress import Progress
from storylang.render.cards import card_warnings
from storylang.resolve import resolve_file
from storylang.timeline import SpokenLine, build_timeline, to_srt, to_vtt
from storylang.timing import Timing, time_film
from storylang.toolchain import find_ffmpeg


def _comfy(options: "BuildOptions"):
    from storylang.render.comfy import ComfyRenderer

    return ComfyRenderer(options.comfy)


RENDERERS = {"animatic": lambda options: AnimaticRenderer(), "comfy": _comfy}


class Superseded(Exception):
    """A newer edit made this build pointless (watch mode): it stopped at a stage boundary."""


def stamp_options(options: "BuildOptions") -> dict:
    return stamp.options_of(options.output, options.renderer, options.burn_subtitles, options.preview,
                            options.release, options.system_ffmpeg)


def _go_on(options: "BuildOptions") -> None:
    if options.cancel is not None and options.cancel.is_set():
        raise Superseded()


@contextmanager
def _workers_stop_with_me(options: "BuildOptions"):
    """An exception in this thread (Ctrl-C, a failed segment) stops the workers at their next
    progress report, killing the ffmpeg each runs, before their pool waits for them to end."""
    try:
        yield
    except BaseException:
        if options.cancel is not None:
            options.cancel.set()
        raise


class BuildFailed(StoryError):
    """A build stopped; `diagnostics` and `sources` explain it in the writer's terms."""

    def __init__(self, diagnostics: list[Diagnostic], sources: dict[str, str]):
        super().__init__(diagnostics, sources)


@dataclass
class BuildOptions:
    output: Path | None = None
    renderer: str = "animatic"
    jobs: int = max(os.cpu_count() or 1, 1)
    burn_subtitles: bool = False
    preview: bool = False
    system_ffmpeg: bool = False
    dry_run: bool = False
    force: bool = False  # replace an output file storyc did not write
    release: bool = False  # the picture in one pass (no segments): see docs/build.md
    cancel: threading.Event | None = None  # set by watch mode when a newer edit supersedes this build
    cache_size: int | None = 10 << 30  # bytes the cache may hold; None: no limit
    comfy: object = None  # render.comfy.ComfySettings when renderer is "comfy"
    expand: bool = False  # --expand: an LLM writes the prompts of shots whose script does not say (expand/)
    locked: bool = False  # --locked: no LLM requests; a shot wanting one not in the lock fails the build
    edit_only: bool = False  # stop after the edit list: pictures, speech and timeline.json, no film (storyc board)
    fill_in: float = 30.0  # ComfyUI: re-cut the film as renders land, at most every so many seconds (0: never)
    voices: str = ""  # "espeak": every line spoken by espeak-ng, whatever engine a voice names
    shots: tuple[str, ...] = ()  # --shot: a film of only these shots (a shot's preview), beside the film's own


@dataclass
class BuildReport:
    output: Path
    timeline: Path
    subtitles: tuple[Path, Path]
    frames: int
    fps: Fraction
    shots: int
    rendered: int
    reused: int
    lines_spoken: int
    lines_reused: int
    picture: str  # "encoded" or "reused"
    sound: str
    film: str
    notes: list[str] = field(default_factory=list)
    labels_drawn: int = 0  # overlays with a shot's words, drawn anew
    warnings: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    failures: list[Diagnostic] = field(default_factory=list)  # shots whose render failed (cut in as cards)
    renderer: str = "animatic"
    reasons: list[str] = field(default_factory=list)  # a dry run: what would be redone and why
    provenance: dict = field(default_factory=dict)  # where the film came from (provenance.py)

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps)


def script_digest(film: Film, root: Path) -> str:
    h = hashlib.sha256()
    for name in film.files:
        h.update(name.encode("utf-8") + b"\0" + file_digest(root / name).encode() + b"\0")
    return h.hexdigest()


def build(script: Path, options: BuildOptions, progress: Progress | None = None) -> BuildReport:
    """Build the film of `script`; one build of a film at a time (a second one waits for the first)."""
    progress = progress or Progress()
    if options.dry_run:
        return _build(script, options, progress, scratch=None)
    if options.cancel is None:
        options = replace(options, cancel=threading.Event())  # how Ctrl-C stops the workers
    build_dir = build_root(script)

    def held_by(who: str) -> None:
        lock = film_dir(script, create=False) / ".lock"
        shown = os.path.relpath(lock) if lock.is_relative_to(Path.cwd()) else str(lock)
        progress.say(f"storyc: {script.stem} is being built by {who}; waiting for it to finish ({shown})")
        progress.stage("waiting", 1)

    with builddir.film_lock(film_dir(script, create=False), on_wait=held_by):
        # what a killed build left behind: partial files and scratch directories
        builddir.remove(builddir.leftovers(build_dir, (options.output.resolve().parent,) if options.output else ()))
        with builddir.scratch(build_dir) as scratch:
            return _build(script, options, progress, scratch)


def render_sheets(script: Path, options: BuildOptions, target: Path | None = None,
                  progress: Progress | None = None) -> tuple[dict[str, Path], dict[str, tuple]]:
    """Only the characters' sheets, on ComfyUI (storyc sheets): rendered, or found in the cache,
    and copied to `target` (default build/<film>/sheets/) as NAME.png. Returns the files by
    character and the failures."""
    from storylang.render.comfy import ComfyRenderer, publish_sheets

    progress = progress or Progress()
    film, sources, _ = _resolved(script, options)
    if not any(c.sheet is not None and c.reference is None for c in film.characters):
        raise BuildFailed([Diagnostic(severity="error", code="no-sheets", file=str(script),
                                      message="no character of this film has a sheet to render",
                                      hint='write `sheet` under a character (a `reference` image wins over it)')],
                          sources)
    build_dir = build_root(script)
    with builddir.film_lock(film_dir(script, create=False)):
        ctx = RenderContext(root=script.resolve().parent, cache=Cache(build_dir / "cache"), jobs=max(options.jobs, 1),
                            progress=progress, build_dir=build_dir / film_folder(script.stem), cancel=options.cancel)
        results, failed = ComfyRenderer(options.comfy).sheets(film, ctx)
        written = publish_sheets(results, target or build_dir / film_folder(script.stem) / "sheets")
    return written, failed


def _build(script: Path, options: BuildOptions, progress: Progress, scratch: Path | None) -> BuildReport:
    """resolve → speak → time → render → edit → assemble (a dry run stops after timing, writing nothing)."""
    film, sources, warnings = _resolved(script, options)
    root = script.resolve().parent
    build_dir = build_root(script, create=not options.dry_run)
    cache = Cache(build_dir / "cache")
    film_dir = output_dir(build_dir, script, options)
    output = _output(script, film, film_dir, options, sources)
    ff = find_ffmpeg(options.system_ffmpeg)
    renderer = RENDERERS[options.renderer](options)
    ctx = RenderContext(root=root, cache=cache, jobs=max(options.jobs, 1), with_lines=not options.burn_subtitles,
                        progress=progress, build_dir=None if options.dry_run else film_dir, cancel=options.cancel)

    expansion = _expand(film, script, options, progress, sources)
    ctx.prompts = expansion.prompts
    warnings = warnings + expansion.problems
    speech, pins = _plan_speech(film, script, cache, options, sources)
    to_speak = speech.missing() if speech else []
    nlines = sum(len(shot.lines) for shot in film.shots)
    if options.dry_run:
        return _dry_run(film, script, options, renderer, ctx, (speech, pins), to_speak, nlines, warnings, sources,
                        expansion, ff, film_dir)

    speech_notes = _speak(speech, pins, to_speak, script, options.jobs, progress, sources)
    _go_on(options)
    seconds = speech.seconds() if speech else {}
    spoken = {k: SpokenLine(file=rel(j.path, root), seconds=seconds[k]) for k, j in (speech.jobs if speech else {}).items()}
    timing = time_film(film, seconds)
    if timing.errors:
        raise BuildFailed(list(timing.errors), sources)
    ctx.spoken = {k: root / s.file for k, s in spoken.items()}  # a lip-synced shot's dialogue is uploaded
    fill = _fill_in(film, timing, ctx, spoken, script, scratch, output, options, ff, renderer.name, expansion)
    try:
        rendered = renderer.render(film, timing, ctx)
    except Cancelled:
        raise Superseded() from None  # our queued and running prompts were withdrawn
    except StoryError as e:
        if e.diagnostics:
            raise BuildFailed(e.diagnostics, sources) from e
        raise
    finally:
        if fill is not None:
            fill.stop()

    _go_on(options)
    film, scored = music.scored(film, rendered.music, rendered.music_why)  # generated music, where it was made
    timeline, notes = build_timeline(film, rendered.pictures, spoken, script_digest(film, root), timing)
    sides = _edit_files(timeline, film_dir, script.stem)
    srt, vtt = film_dir / f"{script.stem}.srt", film_dir / f"{script.stem}.vtt"
    origin = provenance.manifest(film, script, renderer.name, timeline, film_dir, expansion.prompts)
    sides[film_dir / ("timeline.json" + provenance.SIDECAR)] = provenance.manifest_json(origin)
    if options.edit_only:
        # the film is not made, so the film's own edit list stays the one it was cut from
        edit = film_dir / "board-timeline.json"
        atomic.write_text(edit, sides[film_dir / "timeline.json"])
        progress.close()
        return BuildReport(output=output, timeline=edit, subtitles=(srt, vtt),
                           frames=timeline.frames, fps=timeline.fps, shots=len(film.shots), rendered=rendered.made,
                           reused=rendered.reused, lines_spoken=len(to_speak), lines_reused=nlines - len(to_speak),
                           picture="not made", sound="not made", film="not made",
                           notes=expansion.notes + speech_notes + scored + notes,
                           warnings=warnings, sources=sources, failures=rendered.failures, renderer=renderer.name,
                           provenance=origin)
    states = _assemble(timeline, root, cache, scratch, output, options, ff, progress, renderer.name, origin,
                       film_dir / "sound-level.json", sides)
    explain.Record.of(film, timing, root, expansion.prompts).save(film_dir / "explain.json")
    _stamp(script, options, film, output, complete=not (rendered.failures or rendered.incomplete
                                                         or expansion.notes or expansion.problems))
    progress.close()
    return BuildReport(output=output, timeline=film_dir / "timeline.json", subtitles=(srt, vtt),
                       frames=timeline.frames, fps=timeline.fps, shots=len(film.shots), rendered=rendered.made,
                       reused=rendered.reused, lines_spoken=len(to_speak), lines_reused=nlines - len(to_speak),
                       picture=states["picture"], sound=states["sound"], film=states["film"],
                       notes=expansion.notes + speech_notes + rendered.notes + scored + notes
                       + ([states["trimmed"]] if "trimmed" in states else []),
                       labels_drawn=rendered.labels_drawn, warnings=warnings,
                       sources=sources, failures=rendered.failures, renderer=renderer.name, provenance=origin)


def _stamp(script: Path, options: BuildOptions, film: Film, output: Path, complete: bool) -> None:
    """The up-to-date stamp of the whole film (a build of some shots leaves it alone); an
    incomplete build removes it, so that the next one retries the failed shots and prompts."""
    if options.shots:
        return
    if complete:
        stamp.write(script, stamp_options(options), __version__, stamp.inputs(film, script), output)
    else:
        stamp.remove(script)


def _output(script: Path, film: Film, film_dir: Path, options: BuildOptions, sources) -> Path:
    """Where the film goes; BuildFailed if -o would replace something it must not (output.py)."""
    output = options.output or default_output(script, film_dir, options)
    blocked = output_mod.problem(output, options.force)
    if options.output is not None and not blocked:
        blocked = output_mod.export_problem(output, options.force, stamp.inputs(film, script) | {script.resolve()})
    if blocked:
        raise BuildFailed([Diagnostic(severity="error", code="output", file=str(output), message=blocked)], sources)
    return output


def _dry_run(film, script: Path, options: BuildOptions, renderer, ctx, planned, to_speak, nlines: int, warnings,
             sources, expansion, ff, film_dir: Path) -> BuildReport:
    """The plan of a build, and why it would redo what it would: nothing is written."""
    speech, pins = planned
    timing, seconds = _dry_timing(film, speech, to_speak, options.jobs, sources)
    plan = renderer.plan(film, timing, ctx)
    report = _plan_report(film, timing, options, film_dir, script, len(plan.todo), len(plan.cached),
                          len(to_speak), nlines, warnings)
    report.sources = sources
    pinned = speechlock.reasons(speech, pins, to_speak, ctx.root) if pins else {}
    report.reasons = _explain(film, timing, plan, speech, to_speak, seconds, ctx.root, ctx.cache, ff, options, film_dir,
                              expansion.prompts, pinned)
    report.reasons += [f"shot {shot.id} prompt: not in {script.name}.lock as it is now: would be asked of "
                       f"the LLM" for shot in expansion.would_ask] + plan.reasons
    report.notes = expansion.notes + report.notes
    return report


def _expand(film: Film, script: Path, options: BuildOptions, progress: Progress, sources):
    """The expansion stage: the lock's prompts, and (when asked for) the LLM's for shots not in it."""
    from storylang import expand

    if not (options.expand or options.locked or expand.lock_mod.lock_path(script).exists()
            or any(s.expand is not None and s.expand.on for s in film.shots)):
        return expand.Expansion()  # nothing asks for it: no templates rendered, no lock read
    try:
        return expand.expand_film(film, script, expand.Options(expand=options.expand, locked=options.locked,
                                                               requests=not options.dry_run, jobs=options.jobs),
                                  progress)
    except expand.ExpandFailed as e:
        raise BuildFailed(e.diagnostics, sources) from e


def _resolved(script: Path, options: BuildOptions) -> tuple[Film, dict[str, str], list[Diagnostic]]:
    """The resolved film, its sources and warnings; BuildFailed for anything that stops a build here."""
    film, diags, sources = resolve_file(script, str(script))
    if film is None or any(d.severity == "error" for d in diags):
        raise BuildFailed(diags, sources)
    if not film.shots:
        raise BuildFailed([no_shots(str(script))], sources)
    if options.renderer not in RENDERERS:
        raise BuildFailed([Diagnostic(severity="error", code="renderer", file=str(script),
                                      message=f'unknown renderer "{options.renderer}"',
                                      hint="renderers: " + ", ".join(RENDERERS))], sources)
    if options.shots:
        film = only_shots(film, options.shots, script, sources)
    cut = card_warnings(film) if options.renderer == "animatic" else []
    return film, sources, [d for d in diags if d.severity == "warning"] + cut


def only_shots(film: Film, ids: tuple[str, ...], script: Path, sources) -> Film:
    """The film of only the shots `ids` (and the shots they continue, whose last frames they start
    from), with no title or end card: a shot's preview. Its renders are the film's own (the
    cache is keyed by content), so the whole film's build reuses them."""
    known = [s.id for s in film.shots]
    for wanted in ids:
        if wanted not in known:
            guess = did_you_mean(wanted, known)
            raise BuildFailed([Diagnostic(severity="error", code="unknown-shot", file=str(script),
                                          message=f"--shot {wanted}: the film has no such shot",
                                          hint=f"did you mean {guess}?" if guess else "shots: " + ", ".join(known))],
                              sources)
    from storylang.comfy.graphs import with_predecessors

    keep = with_predecessors(film, set(ids))
    return film.model_copy(update={"shots": tuple(s for s in film.shots if s.id in keep), "title_frames": 0,
                                   "end_frames": 0, "fade_in": 0, "fade_out": 0})


def shot_preview_path(script: Path, ids: tuple[str, ...]) -> Path:
    """The film `storyc build --shot ID...` writes (no -o)."""
    options = BuildOptions(shots=ids)
    return default_output(script, output_dir(build_root(script, create=False), script, options), options)


def output_dir(build_dir: Path, script: Path, options: BuildOptions) -> Path:
    """build/<film>, or for a build of some shots its own folder under it (never over the film's files)."""
    folder = build_dir / film_folder(script.stem)
    return folder / "shots" / shots_folder(options.shots) if options.shots else folder


def default_output(script: Path, film_dir: Path, options: BuildOptions) -> Path:
    """Where the film goes without -o."""
    stem = script.stem + (f"-{shots_folder(options.shots)}" if options.shots else "")
    return film_dir / f"{stem}{'-preview' if options.preview else ''}.mp4"


def shots_folder(ids: tuple[str, ...]) -> str:
    """build/<film>/shots/<this>: where a preview of these shots goes (a name safe as a file's)."""
    return "shot-" + "+".join(re.sub(r"[^A-Za-z0-9._-]", "_", i) for i in ids)


def _plan_speech(film: Film, script: Path, cache: Cache, options: BuildOptions, sources):
    """The film's lines as speech jobs (None for a silent film) and the lock's pins of the lines a
    server speaks (None when none does); BuildFailed for unknown voices, and for server lines
    `--locked` cannot take from the cache as pinned. `--voices espeak` speaks every line with
    espeak-ng, whatever engine the script names (and leaves the pins as they are)."""
    if not any(shot.lines for shot in film.shots):
        return None, None
    if options.voices == "espeak":
        film = speech_mod.offline(film)
    engine = speech_mod.engine()
    voice_errors = speech_mod.voice_errors(film, engine)
    if voice_errors:
        raise BuildFailed(voice_errors, sources)
    server = None
    if any(line.voice.engine != "espeak" for shot in film.shots for line in shot.lines):
        from storylang import tts

        server = tts.settings_for(script)
    speech = speech_mod.FilmSpeech(film, speech_mod.SpeechStage(engine, cache, server))
    if server is None:
        return speech, None
    try:
        pins = speechlock.read(script, speech)
    except lock_mod.LockError as e:
        raise BuildFailed([Diagnostic(severity="error", code="lock", file=str(script), message=str(e))], sources)
    locked = speechlock.locked_errors(speech, pins) if options.locked else []
    if locked:
        raise BuildFailed(locked, sources)
    return speech, pins


def _speak(speech, pins, to_speak, script: Path, jobs: int, progress: Progress, sources) -> list[str]:
    """Speak the lines not in the cache, each in a process of its own, `jobs` at a time; pin what
    the servers answered. The notes of lines whose server audio changed."""
    if speech and to_speak:
        progress.stage("voices", len(to_speak))
        try:
            speech.speak(to_speak, jobs, on_done=lambda _job: progress.advance())
        except StoryError as e:
            raise BuildFailed(e.diagnostics, sources) from e
    return speechlock.pin(speech, pins, script.resolve().parent, script.name) if pins else []


def _edit_files(timeline, film_dir: Path, stem: str) -> dict[Path, str]:
    """timeline.json and the subtitle sidecars: written with the film, never without it."""
    return {film_dir / "timeline.json": timeline.to_json(), film_dir / f"{stem}.srt": to_srt(timeline),
            film_dir / f"{stem}.vtt": to_vtt(timeline)}


def _publish(film_file: Path, output: Path, sides: dict[Path, str]) -> bool:
    """The film and its side files in place together: each is written under a temporary name
    first and all are renamed at the end, so a failure leaves the last film's set whole.
    Returns whether the film itself changed."""
    changed = not (output.is_file() and output.stat().st_size == film_file.stat().st_size
                   and file_digest(output) == file_digest(film_file))
    with ExitStack() as stack:
        for path, text in sides.items():
            if not (path.is_file() and path.read_text(encoding="utf-8", errors="replace") == text):
                stack.enter_context(atomic.atomic_path(path)).write_text(text, encoding="utf-8")
        if changed:
            shutil.copyfile(film_file, stack.enter_context(atomic.atomic_path(output, suffix=".mp4")))
    return changed


def _encoding(options: BuildOptions) -> assemble.Encoding:
    return assemble.Encoding(preset="ultrafast" if options.preview else "medium", crf=28 if options.preview else 20,
                             scale=Fraction(1, 2) if options.preview else Fraction(1),
                             burn_subtitles=options.burn_subtitles)


def _picture_key(timeline, root: Path, enc, ff, subs_file: Path | None) -> str:
    return digest({
        "stage": assemble.PICTURE_VERSION, "camera": camera.STAGE_VERSION, "stills": stills.STAGE_VERSION, "ffmpeg": ff.version,
        "encoding": enc.key(), "size": [timeline.width, timeline.height], "fps": [timeline.fps_num, timeline.fps_den],
        "frames": timeline.frames, "fades": [timeline.fade_in, timeline.fade_out],
        "clips": [c.model_dump(mode="json") for c in timeline.clips],
        "files": {f: file_digest(root / f) for c in timeline.clips for f in c.files},
        "subtitles": subs_file.name if subs_file else None,
    })


def _sound_key(timeline, root: Path, enc, ff) -> str:
    return digest({
        "stage": mix.SOUND_VERSION, "ffmpeg": ff.version, "bitrate": enc.audio_bitrate,
        "frames": timeline.frames, "fps": [timeline.fps_num, timeline.fps_den],
        "fades": [timeline.fade_in, timeline.fade_out],
        "speech": [s.model_dump(mode="json") for s in timeline.speech],
        "music": [m.model_dump(mode="json") for m in timeline.music],
        "files": {f: file_digest(root / f) for f in {s.file for s in timeline.speech} | {m.file for m in timeline.music}},
    })


@dataclass
class Picture:
    """How the picture will be made: its key, and its file (one pass) or its segments and their
    joins by scene (segmented: the film is written from the joins, with no picture file between)."""

    key: str
    file: Path | None = None  # one pass
    segments: list = field(default_factory=list)  # (Segment, key, file) of every segment
    runs: list = field(default_factory=list)  # (file, segment files) per scene, in order: joined once

    @property
    def one_pass(self) -> bool:
        return self.file is not None

    def todo(self) -> list:
        return [item for item in self.segments if not item[2].is_file()]

    def inputs(self) -> list[Path]:
        """What the film's picture is read from, in order."""
        return [self.file] if self.file is not None else [file for file, _ in self.runs]


def plan_picture(timeline, root: Path, cache: Cache, enc, ff, options: BuildOptions, subs_file) -> Picture:
    """Segments (re-encode only what changed) unless subtitles are burnt in, `--release` asks for one
    pass, or a film fade crosses a transition."""
    segments = None if (subs_file is not None or options.release) else assemble.plan_segments(timeline)
    if segments is None:
        key = _picture_key(timeline, root, enc, ff, subs_file)
        return Picture(key, cache.path("picture", key, ".mp4"))
    common = {"stage": assemble.SEGMENT_VERSION, "camera": camera.STAGE_VERSION, "stills": stills.STAGE_VERSION,
              "ffmpeg": ff.version, "encoding": enc.key()}
    items = []
    for seg in segments:
        k = digest({**common, **assemble.segment_inputs(timeline, seg, root)})
        items.append((seg, k, cache.path("segments", k, ".mp4")))
    runs, keys = _scene_runs(timeline, items, cache)
    key = digest({"stage": assemble.CONCAT_VERSION, "runs": keys})
    return Picture(key, None, items, runs)


def _scene_runs(timeline, items: list, cache: Cache) -> tuple[list, list[str]]:
    """The segments in runs, one per scene, each joined once and kept: an edit joins its scene's
    segments and then the film's scenes, not every segment of the film (joining costs a probe of
    each file, about 6 ms). A scene of one segment is that segment. Returns the runs and their keys."""
    runs, keys = [], []
    for _, group in itertools.groupby(items, key=lambda item: timeline.clips[item[0].pieces[0].clip].scene):
        group = list(group)
        if len(group) == 1:
            runs.append((group[0][2], [group[0][2]]))
            keys.append(group[0][1])
            continue
        k = digest({"stage": assemble.CONCAT_VERSION, "segments": [k for _, k, _ in group]})
        runs.append((cache.path("scenes", k, ".mp4"), [file for _, _, file in group]))
        keys.append(k)
    return runs, keys


def _make_picture(pic: Picture, timeline, root: Path, scratch: Path, enc, ff, options: BuildOptions, subs_file,
                  progress: Progress) -> str:
    """Encode what is missing; returns "reused", "encoded", "encoded (k of n segments)" or "joined"."""
    if all(f.is_file() for f in pic.inputs()):
        return "reused"
    frames_of = stills.frame_source(root, timeline.fps, max(options.jobs, 1))
    if pic.one_pass:
        progress.stage("picture", timeline.frames)
        assemble.picture(timeline, root, scratch, pic.file, enc, ff, frames_of, subtitles=subs_file,
                         on_progress=progress.update)
        return "encoded"
    todo = pic.todo()
    progress.stage("picture", sum(seg.frames for seg, _, _ in todo))
    done = {"frames": 0}
    lock = threading.Lock()

    def encode(item) -> None:
        seg, _key, file = item
        last = {"n": 0}

        def moved(n: int) -> None:
            with lock:
                done["frames"] += n - last["n"]
                last["n"] = n
                progress.update(done["frames"])

        _go_on(options)  # a superseded build stops: finished segments stay cached, the running one is killed
        assemble.encode_segment(timeline, seg, root, scratch, file, enc, ff, frames_of, on_progress=moved,
                                stop=lambda: _go_on(options))

    # two encoders at a time keep both cores busy while Python computes the next frames
    with ThreadPoolExecutor(max_workers=2 if options.jobs > 1 else 1) as pool, _workers_stop_with_me(options):
        waiting.results([pool.submit(encode, item) for item in todo])
    _go_on(options)
    for file, parts in pic.runs:
        if not file.is_file():
            assemble.concat(parts, file, ff, scratch)
    if not todo:
        return "joined"  # a scene's join was trimmed from the cache, its segments were not
    return "encoded" if len(todo) == len(pic.segments) else f"encoded ({len(todo)} of {len(pic.segments)} segments)"


def _fill_in(film, timing, ctx, spoken, script: Path, scratch: Path, output: Path, options: BuildOptions, ff,
             renderer: str, expansion):
    """With ComfyUI, the film cut from cards at once and again as renders land (fillin.py): started
    here, stopped once the renders are done; None when the build does not fill in."""
    from storylang.fillin import FillIn

    if renderer == "animatic" or options.edit_only or not options.fill_in:
        return None
    root, film_dir = ctx.root, ctx.build_dir
    quiet = replace(ctx, progress=Progress(), landed=None, rendering=None)
    # its own stop: a cut that fails must not stop the build, and stopping the fill-in stops a cut
    between = replace(options, cancel=threading.Event())
    cards: dict = {}
    where = scratch / "fill-in"

    def cut(landed: dict) -> None:
        if not cards:
            cards.update(AnimaticRenderer().render(film, timing, quiet).pictures)
        timeline, _ = build_timeline(film, {**cards, **landed}, spoken, script_digest(film, root), timing)
        sides = _edit_files(timeline, film_dir, script.stem)
        origin = provenance.manifest(film, script, renderer, timeline, film_dir, expansion.prompts)
        sides[film_dir / ("timeline.json" + provenance.SIDECAR)] = provenance.manifest_json(origin)
        where.mkdir(exist_ok=True)
        try:
            _assemble(timeline, root, ctx.cache, where, output, between, ff, Progress(), renderer, origin,
                      film_dir / "sound-level.json", sides, keep=False)
        except Superseded:
            pass  # the renders are done (or withdrawn): the build's own cut follows

    def start() -> None:
        stamp.remove(script)  # the film in between is not the script's film: the next build must not skip
        fill.start()

    fill = FillIn(cut, options.fill_in, on_stop=between.cancel.set, on_error=lambda why: ctx.progress.say(
        f"storyc: the film in between was not cut ({why}); the build goes on"))
    ctx.landed, ctx.rendering = fill.land, start
    return fill


def _assemble(timeline, root: Path, cache: Cache, scratch: Path, output: Path, options: BuildOptions, ff,
              progress: Progress, renderer: str, origin: dict, level_file: Path,
              sides: dict[Path, str], keep: bool = True) -> dict[str, str]:
    """Picture, sound and mux, each skipped when its inputs are unchanged; then the film at `output`.

    Returns what happened to each: picture encoded/reused, sound mixed/reused, film written/reused.
    `level_file` keeps the level of the film's last sound (the sound's likely level next time).
    """
    enc = _encoding(options)
    subs_file = None
    if options.burn_subtitles and timeline.subtitles:
        subs_text = to_srt(timeline)
        subs_file = cache.path("subtitles", digest({"srt": subs_text}), ".srt")
        if not subs_file.is_file():
            atomic.write_text(subs_file, subs_text)
    pic = plan_picture(timeline, root, cache, enc, ff, options, subs_file)
    sound_key = _sound_key(timeline, root, enc, ff)
    sound_file = cache.path("sound", sound_key, ".m4a")
    states = {"picture": "reused", "sound": "reused", "film": "reused"}
    # The sound is mixed while the picture encodes: they share nothing.
    with ThreadPoolExecutor(max_workers=1) as pool, _workers_stop_with_me(options):
        sound_job = (pool.submit(mix.sound, timeline, root, sound_file, enc, ff, cache, scratch, lambda: _go_on(options),
                                 2 if options.jobs > 1 else 1, _likely_level(level_file))
                     if not sound_file.is_file() else None)
        states["picture"] = _make_picture(pic, timeline, root, scratch, enc, ff, options, subs_file, progress)
        made = waiting.result(sound_job) if sound_job else None
        if made:
            states["sound"] = made.state()
            atomic.write_text(level_file, json.dumps(made.level, sort_keys=True))
    meta = assemble.metadata(timeline, f"storyc {__version__}; renderer {renderer}; "
                                       f"script sha256:{timeline.script_digest}", provenance.text(origin))
    film_file = cache.path("films", digest({"stage": assemble.MUX_VERSION, "picture": pic.key,
                                             "sound": sound_key, "meta": meta}), ".mp4")
    if not film_file.is_file():
        assemble.mux(pic.inputs(), sound_file, meta, film_file, ff, scratch)
        states["film"] = "written"
    if _publish(film_file, output, sides):
        states["film"] = "written"
    if keep:  # not for a cut in between: what the renders made first must survive until the last cut
        _keep_used(cache, timeline, root, pic, [sound_file, *(made.files if made else ())], film_file, options,
                   states)
    return states


def _likely_level(level_file: Path) -> dict | None:
    """The level of the film's last sound, if it looks like one (it only saves work: a wrong one
    costs a second encode of the pieces it was used for, never a different sound)."""
    try:
        level = json.loads(level_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(level, dict) and isinstance(level.get("limit"), bool)
            and type(level.get("gain")) in (int, float)):
        return None
    return {"gain": float(level["gain"]), "limit": level["limit"]}


def _keep_used(cache: Cache, timeline, root: Path, pic, sound_files: list[Path], film_file: Path, options: BuildOptions,
               states: dict) -> None:
    """Mark what this film uses as just used, then trim the cache to its size limit (least recently used
    first), so switching back to an older script (git checkout) finds its artifacts while they fit."""
    used = {root / f for c in timeline.clips for f in (*c.files, *(o.file for o in c.overlays))}
    used |= {root / s.file for s in timeline.speech}
    used |= {file for _, _, file in pic.segments} | {*pic.inputs(), film_file, *sound_files}
    used = {p for p in used if cache.root in p.resolve().parents}
    used |= {p.with_suffix(".json") for p in used}  # the records beside speech and renders
    cache.touch(used)
    if options.cache_size is not None:
        removed, freed = cache.trim(options.cache_size, used)
        if removed:
            states["trimmed"] = f"cache over {options.cache_size >> 20} MB: removed {removed} old artifacts " \
                                f"({freed >> 20} MB)"


def _dry_timing(film, speech, to_speak, jobs: int, sources) -> tuple[Timing, dict[str, float]]:
    """The film's timing without writing to the build: unspoken lines are spoken into a scratch cache."""
    import tempfile

    seconds = {}
    if speech:
        with tempfile.TemporaryDirectory(prefix="storyc-dry-") as scratch:
            # a server's lines are not asked for: espeak-ng's default voice stands in for their length
            trial = speech_mod.FilmSpeech(speech_mod.offline(film),
                                          speech_mod.SpeechStage(speech.stage.engine, Cache(Path(scratch))))
            todo = {job.path.name for job in to_speak}
            keys = {key for key, job in speech.jobs.items() if job.path.name in todo}
            try:
                trial.speak(list({trial.jobs[k].path: trial.jobs[k] for k in keys}.values()), jobs)
            except StoryError as e:
                raise BuildFailed(e.diagnostics, sources) from e
            for key, job in speech.jobs.items():
                seconds[key] = speech_mod.wav_duration(trial.jobs[key].path if key in keys else job.path)
    timing = time_film(film, seconds)
    if timing.errors:
        raise BuildFailed(list(timing.errors), sources)
    return timing, seconds


def _explain(film, timing, plan, speech, to_speak, seconds, root: Path, cache: Cache, ff, options: BuildOptions,
             film_dir: Path, prompts: dict, pinned: dict[str, str]) -> list[str]:
    """What a build would redo, artifact by artifact, and why (compared with the last build's record);
    `pinned` holds the reasons of server lines measured against the lock."""
    spoken_paths = {job.path for job in to_speak}
    todo = {plan.kind: plan.todo, "words": plan.words,
            "speech": [k for k, job in (speech.jobs if speech else {}).items()
                       if job.path in spoken_paths and k not in pinned]}
    if plan.pictures is not None and not options.burn_subtitles:
        spoken = {k: SpokenLine(file=rel(j.path, root), seconds=seconds[k]) for k, j in (speech.jobs if speech else {}).items()}
        timeline, _ = build_timeline(film, plan.pictures, spoken, script_digest(film, root), timing)
        enc = _encoding(options)
        pic = plan_picture(timeline, root, cache, enc, ff, options, None)
        todo["segment"] = [[s for s in seg.shots(timeline) if not s.startswith("#")] for seg, _, _ in pic.todo()]
        if not todo["speech"] and not cache.path("sound", _sound_key(timeline, root, enc, ff), ".m4a").is_file():
            todo["sound"] = "music or the mix changed"
    if todo["speech"]:
        todo["sound"] = "lines changed"
    return explain.reasons(explain.Record.load(film_dir / "explain.json"), explain.Record.of(film, timing, root, prompts),
                           todo) + list(pinned.values())


def _plan_report(film, timing, options, film_dir, script, rendered, reused, to_speak, lines, warnings) -> BuildReport:
    output = options.output or default_output(script, film_dir, options)
    return BuildReport(output=output, timeline=film_dir / "timeline.json",
                       subtitles=(film_dir / f"{script.stem}.srt", film_dir / f"{script.stem}.vtt"),
                       frames=timing.frames, fps=film.fps, shots=len(film.shots), rendered=rendered, reused=reused,
                       lines_spoken=to_speak, lines_reused=lines - to_speak, picture="planned", sound="planned",
                       film="planned", warnings=warnings, notes=list(timing.notes))


