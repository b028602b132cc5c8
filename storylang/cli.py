"""The `storyc` command line: parse arguments, call one function, print."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from storylang import __version__


def _echo(message="", err: bool = False, nl: bool = True) -> None:
    """Every line storyc prints: words from a script or a server can hold no live control character."""
    from storylang.diagnostics import inert

    click.echo(inert(str(message), newlines=True), err=err, nl=nl)


def _display(path: Path) -> str:
    return str(path)


def _print_diagnostics(diagnostics, sources, fmt: str = "text") -> None:
    from storylang.diagnostics import render_json, render_text, sort_key

    diagnostics = sorted(diagnostics, key=sort_key)
    if fmt == "json":
        _echo(render_json(diagnostics))
    elif diagnostics:
        _echo(render_text(diagnostics, sources), err=True)


def _summary(diagnostics) -> str:
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = sum(1 for d in diagnostics if d.severity == "warning")
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' * (errors != 1)}")
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts)


def _node_list_options(command):
    """--comfy URL and --object-info: which ComfyUI node list graphs are validated against."""
    command = click.option("--object-info", "object_info", default="full", show_default=True,
                           help="Offline node list: core or full (ComfyUI 0.33 stock, or with popular packs), 0.3.64 or 0.33 (full), core-0.3.64, full-0.3.64, ..., or a saved /object_info JSON file.")(command)
    return click.option("--comfy", "comfy", metavar="URL",
                        help="Validate against this ComfyUI server's /object_info instead.")(command)


class _Commands(click.Group):
    """The last word on any error a command did not report itself: one line that names the
    thing, never a traceback (a read-only folder, a full disk, a file that vanished)."""

    def invoke(self, ctx):
        from storylang.diagnostics import StoryError

        try:
            return super().invoke(ctx)
        except StoryError as e:
            if e.diagnostics:
                _print_diagnostics(e.diagnostics, e.sources)
            _echo(f"storyc: {e if not e.diagnostics else _summary(e.diagnostics)}", err=True)
            sys.exit(1)
        except BrokenPipeError:  # `storyc voices | head`: the reader has all it wants
            sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - Python flushes it at exit
            sys.exit(1)
        except OSError as e:
            where = f"{e.filename}: " if e.filename else ""
            _echo(f"storyc: {where}{e.strerror or e}", err=True)
            sys.exit(1)


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="storyc")
@click.option("--allow-read", "allow_read", multiple=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False),
              help="Let scripts read files in this folder too (repeatable; by default only their project's).")
def main(allow_read: tuple[Path, ...]) -> None:
    """storyc: compile a .story screenplay into a film."""
    _stop_on_terminate()
    _allow_reads(allow_read)


def _allow_reads(folders: tuple[Path, ...]) -> None:
    """--allow-read goes into the environment, so that every stage and worker process sees it."""
    import os

    from storylang import trust

    if folders:
        known = [p for p in os.environ.get(trust.READ_ENV, "").split(os.pathsep) if p]
        os.environ[trust.READ_ENV] = os.pathsep.join(known + [str(f.resolve()) for f in folders])


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _stop_on_terminate() -> None:
    """SIGTERM (a process manager, `timeout`, CI cancelling) and SIGHUP (a closed terminal) stop
    storyc as Ctrl-C does: its encoders killed, nothing half-written kept. By default they would
    end the process at once and leave its ffmpeg running on."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, _interrupt)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Diagnostics as text or JSON.")
@click.option("--dump", is_flag=True, help="Print the resolved film as JSON.")
@_node_list_options
def check(files: tuple[Path, ...], fmt: str, dump: bool, comfy: str | None, object_info: str) -> None:
    """Parse, resolve and validate scripts (and their ComfyUI graphs); report every problem found."""
    from storylang.check import check_film, model_families
    from storylang.diagnostics import has_errors

    all_diags = []
    sources: dict[str, str] = {}
    dumps = []
    for path in files:
        try:
            checked = check_film(path, _display(path), comfy or object_info)
        except OSError as e:
            _echo(f"storyc: {e}", err=True)
            sys.exit(1)
        film = checked.film
        all_diags.extend(checked.diagnostics)
        sources.update(checked.sources)
        if film is not None and dump:
            dumps.append(film.model_dump_json(indent=2))
        if film is not None and fmt == "text" and not dump:
            seconds = checked.timing.frames / film.fps
            _echo(f"{path}: {_count(len(film.scenes), 'scene')}, {_count(len(film.shots), 'shot')}, "
                       f"{_duration_text(float(seconds))} at {film.width}x{film.height} {float(film.fps):g}fps", err=True)
            for line in model_families(film, path.resolve().parent):
                _echo(f"  {line}", err=True)
    _print_diagnostics(all_diags, sources, fmt)
    for d in dumps:
        _echo(d)
    if fmt == "text" and all_diags:
        _echo(f"storyc: {_summary(all_diags)}", err=True)
    if has_errors(all_diags):
        sys.exit(1)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' * (n != 1)}"


def _say(text: str) -> None:
    _echo(text, err=True)


def _progress(console, live: bool = True):
    """Bars on a terminal; in a pipe or a log only the lines that must be seen."""
    from storylang.progress import Progress, RichProgress

    return RichProgress(console) if console.is_terminal and live else Progress(say=_say)


def _shown(path: Path) -> str:
    import os

    rel = os.path.relpath(path)
    return str(path) if rel.startswith(os.pardir + os.sep + os.pardir) else rel


def _duration_text(seconds: float) -> str:
    m, s = divmod(seconds, 60)
    return f"{int(m)}m{s:04.1f}s" if m else f"{s:.1f}s"


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--check", "check_only", is_flag=True, help="Change nothing; exit 1 if a file is not formatted.")
@click.option("--number", is_flag=True, help="Give a locked number to every shot that has none.")
@click.option("--diff", is_flag=True, help="Print what would change as a unified diff.")
def fmt(files: tuple[Path, ...], check_only: bool, number: bool, diff: bool) -> None:
    """Rewrite scripts in the canonical format (idempotent, keeps comments)."""
    import difflib

    from storylang import atomic
    from storylang.syntax.format import format_script
    from storylang.syntax.parse import parse_file

    failed = changed = 0
    for path in files:
        tree, diags, text = parse_file(path, _display(path))
        if tree is None or any(d.severity == "error" for d in diags):
            _print_diagnostics(diags, {_display(path): text} if text else {})
            failed += 1
            continue
        new = format_script(tree, text, number_shots=number)
        if new == text:
            continue
        changed += 1
        if diff:
            _echo("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                    f"{path}", f"{path} (formatted)")))
        if check_only:
            _echo(f"would reformat {path}", err=True)
        elif not diff:
            atomic.write_text(path, new, through_links=True)
            _echo(f"reformatted {path}", err=True)
    if failed:
        _echo(f"storyc: {failed} file{'s' * (failed != 1)} could not be read", err=True)
        sys.exit(1)
    if check_only and changed:
        sys.exit(1)


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write the film (MP4).")
@click.option("--renderer", type=click.Choice(["animatic", "comfy"]), default=None,
              help="What makes the pictures (default: comfy when servers are configured, else animatic).")
@click.option("--comfy", "comfy", multiple=True, metavar="URL",
              help="Render on this ComfyUI server (repeatable: a pool). Also STORYC_COMFY or storyc.toml.")
@click.option("--skip-missing", is_flag=True, help="Shots no server can run become animatic cards.")
@click.option("--strict", is_flag=True, help="A failed render fails the build (no card in its place).")
@click.option("--fill-in", "fill_in", type=click.FloatRange(0), default=30.0, show_default=True, metavar="SECONDS",
              help="With ComfyUI: cut the film from cards at once, then again as renders land, at most this often "
                   "(0: only at the end).")
@click.option("--voices", type=click.Choice(["espeak"]), default=None,
              help="Speak every line with espeak-ng (offline), whatever engine a voice names.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None, help="Shots rendered at once (default: cores).")
@click.option("--burn-subtitles", is_flag=True, help="Burn the subtitles into the picture.")
@click.option("--preview", is_flag=True, help="Half resolution and the fastest encoder settings.")
@click.option("--release", is_flag=True, help="Encode the picture in one pass (no cached segments).")
@click.option("--cache-size", default="10G", show_default=True, metavar="SIZE",
              help="Most the build cache may hold (e.g. 500M, 20G, or 0 for no limit); least recently used goes first.")
@click.option("--system-ffmpeg", is_flag=True, help="Prefer the ffmpeg on PATH to the bundled one.")
@click.option("--dry-run", is_flag=True, help="Say what would be rendered, spoken and encoded; do nothing.")
@click.option("--force", is_flag=True, help="Replace an -o file that storyc did not write.")
@click.option("--expand", "expand", is_flag=True,
              help="An LLM writes the prompts of shots whose script does not say expand on/off (pinned in FILE.lock).")
@click.option("--locked", is_flag=True, help="Ask no LLM and no speech server: what the lock does not pin (or the cache lacks) fails (CI).")
@click.option("--export", "exports", default="", metavar="FORMATS",
              help="Also write these timelines beside the film, e.g. otio,edl (otio, edl, fcp7, fcpx).")
@click.option("--shot", "shots", multiple=True, metavar="ID",
              help="Build only this shot (repeatable), as a short film of its own in build/<film>/shots/.")
def build(script: Path, output, renderer, comfy, skip_missing, strict, fill_in, voices, jobs, burn_subtitles,
          preview, release, cache_size, system_ffmpeg, dry_run, force, expand, locked, exports, shots) -> None:
    """Build the film: pictures (animatic or ComfyUI), voices, edit list and the finished MP4."""
    import os
    import time

    t0 = time.perf_counter()
    formats = [f.strip() for f in exports.split(",") if f.strip()]
    unknown = [f for f in formats if f not in ("otio", "edl", "fcp7", "fcpx")]
    if unknown:
        _echo(f"storyc: --export {unknown[0]!r}: the timelines are otio, edl, fcp7 and fcpx "
                   "(storyc export --format fountain writes the screenplay)", err=True)
        sys.exit(2)
    if _nothing_changed(script, output, renderer, comfy, burn_subtitles, preview, release, system_ffmpeg,
                        dry_run or force or expand or locked or bool(formats) or bool(voices) or bool(shots), t0):
        return

    from rich.console import Console

    from storylang.build import BuildOptions
    from storylang.build import build as run_build
    from storylang.diagnostics import StoryError

    console = Console(stderr=True)
    try:
        renderer, settings = _comfy_settings(script, renderer, comfy, skip_missing, strict)
        limit = _size(cache_size)
    except (StoryError, click.BadParameter) as e:
        _echo(f"storyc: {e}", err=True)
        sys.exit(2)
    options = BuildOptions(output=output, renderer=renderer, jobs=jobs or max(os.cpu_count() or 1, 1),
                           burn_subtitles=burn_subtitles, preview=preview, system_ffmpeg=system_ffmpeg,
                           dry_run=dry_run, force=force, comfy=settings, release=release, cache_size=limit,
                           expand=expand, locked=locked, fill_in=fill_in, voices=voices or "", shots=tuple(shots))
    progress = _progress(console, live=not dry_run)
    failed = "cannot plan the build" if dry_run else "build failed"  # a dry run (storyc status) builds nothing
    try:
        report = run_build(script, options, progress)
    except StoryError as e:  # the one root of what a writer can see
        progress.close()
        if e.diagnostics:
            _print_diagnostics(e.diagnostics, e.sources)
            _echo(f"storyc: {failed}: {_summary(e.diagnostics)}", err=True)
        else:
            _echo(f"storyc: {failed}: {e}", err=True)
        sys.exit(1)
    except OSError as e:  # the disk, not the script: name the file and the fix
        progress.close()
        import errno

        fix = {errno.ENOSPC: "free some space (storyc clean --all removes old builds)",
               errno.EACCES: "check the permissions of that folder", errno.EROFS: "build somewhere writable"}
        where = f" {e.filename}:" if e.filename else ""
        _echo(f"storyc: build failed:{where} {e.strerror or e}; {fix.get(e.errno, 'nothing half-written was kept')}",
                   err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        progress.close()
        _echo("storyc: interrupted; nothing half-written was kept", err=True)
        sys.exit(130)
    if report.warnings:
        _print_diagnostics(report.warnings, report.sources)
    for note in report.notes:
        _echo(f"note: {note}", err=True)
    if report.failures:
        _print_diagnostics(report.failures, report.sources)
    if not dry_run:
        try:
            for fmt in formats:
                _timeline_export(script, report, fmt)
        except StoryError as e:
            _echo(f"storyc: export failed: {e}", err=True)
            sys.exit(1)
    _print_summary(report, script, dry_run, time.perf_counter() - t0)


def _print_summary(report, script: Path, dry_run: bool, elapsed: float) -> None:
    """The plan of a dry run, or what a build did; exit 1 when shots failed to render."""
    if dry_run:
        for reason in report.reasons:
            _echo(f"  {reason}")
        _echo(f"plan for {script}: {_count(report.shots, 'shot')} ({report.rendered} to render, {report.reused} up to date), "
                   f"{_count(report.lines_spoken + report.lines_reused, 'line')} ({report.lines_spoken} to speak), "
                   f"{_duration_text(report.seconds)} of film -> {_shown(report.output)}")
        return
    own = report.shots - report.rendered - report.reused
    lines = report.lines_spoken + report.lines_reused
    made = "rendered" if report.renderer == "comfy" else "drawn"
    _echo(f"{_count(report.shots, 'shot')}: {report.rendered} {made}, {report.reused} reused"
               + (f", {own} from their own images or footage" if own else "") + "; "
               f"{_count(lines, 'line')}: {report.lines_spoken} spoken, "
               f"{report.lines_reused} reused; picture {report.picture}, sound {report.sound}", err=True)
    state = "up to date" if report.film == "reused" else "written"
    _echo(f"{_shown(report.output)}: {_duration_text(report.seconds)} ({report.frames} frames), {state}, "
               f"in {elapsed:.1f}s", err=True)
    if report.failures:
        _echo(f"storyc: {_count(len(report.failures), 'shot')} failed to render and were cut in as cards",
                   err=True)
        sys.exit(1)


def _nothing_changed(script: Path, output, renderer, comfy, burn_subtitles, preview, release, system_ffmpeg,
                     skip: bool, t0: float) -> bool:
    """The no-op fast path: the last complete build's stamp still matches (see stamp.py)."""
    import os
    import time

    from storylang import stamp

    if skip or comfy or os.environ.get("STORYC_COMFY") or renderer == "comfy" or stamp.project_config(script):
        return False  # the full build decides (servers, or a project file, are involved)
    options = stamp.options_of(output, renderer or "animatic", burn_subtitles, preview, release, system_ffmpeg)
    film = stamp.up_to_date(script, options, __version__)
    if film is None:
        return False
    _echo(f"{_shown(film)}: up to date (nothing it reads has changed), in {time.perf_counter() - t0:.2f}s",
               err=True)
    return True


def _size(text: str) -> int | None:
    """"500M", "20G", "1.5T", "123" (bytes) → bytes; "0" → None (no limit)."""
    units = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = str(text).strip().upper().removesuffix("B")
    unit = t[-1] if t and t[-1] in units else ""
    try:
        value = float(t[:-1] if unit else t)
    except ValueError:
        raise click.BadParameter(f"--cache-size {text!r} is not a size; write it like 500M or 20G") from None
    return int(value * units[unit]) or None


def _comfy_settings(script: Path, renderer, flags, skip_missing: bool, strict: bool):
    """(renderer, ComfySettings or None) from the flags, STORYC_COMFY and storyc.toml."""
    from storylang import config

    servers, found, trusted = config.comfy_servers(script, tuple(flags))
    if renderer is None:
        renderer = "comfy" if servers else "animatic"
    if renderer != "comfy":
        return renderer, None
    if not servers:
        raise config.ConfigError("the comfy renderer needs a server: --comfy http://host:8188, STORYC_COMFY, "
                                 "or servers in storyc.toml")
    from storylang.render.comfy import ComfySettings

    extra = {k: found[k] for k in ("inflight", "stall", "poll", "schedule") if k in found}
    _untrusted_notice(servers, trusted, "STORYC_COMFY_TOKEN")
    return renderer, ComfySettings(servers=servers, skip_missing=skip_missing, strict=strict, trusted=trusted, **extra)


def _untrusted_notice(servers, trusted, secret: str) -> None:
    """One line per server the project named but the user did not: it gets no credentials."""
    import os

    from storylang.comfy.client import shown

    if not any(k == secret or k.startswith(secret + "_") for k in os.environ):
        return
    for url in servers:
        if url not in trusted:
            _say(f"storyc: {shown(url)} comes from storyc.toml, not from you: it gets no {secret}; "
                 f"name it with --comfy or in your own config to send it (docs/security.md)")


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--preview", is_flag=True, help="Also keep a fast low-resolution film, updated first.")
@click.option("--open", "open_player", is_flag=True, help="Open the film in the system's player once.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=None, help="Work done at once (default: cores).")
@click.option("--comfy", "comfy", multiple=True, metavar="URL", help="Render on ComfyUI (as for build).")
@click.option("--renderer", type=click.Choice(["animatic", "comfy"]), default=None, help="As for build.")
@click.option("--fill-in", "fill_in", type=click.FloatRange(0), default=30.0, show_default=True, metavar="SECONDS",
              help="As for build: with ComfyUI the film fills in as renders land.")
@click.option("--serve", is_flag=True, help="Serve a live preview page: the film and its storyboard, updated on each rebuild.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="The preview page's port.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="The interface the preview page listens on (another than 127.0.0.1 only if you mean it).")
def watch(script: Path, preview: bool, open_player: bool, jobs, comfy, renderer, fill_in, serve, port, host) -> None:
    """Rebuild the film whenever the script, its includes or its media change."""
    import os
    import threading
    import time

    from storylang.build import BuildOptions
    from storylang.diagnostics import StoryError
    from storylang.watch import Watcher

    try:
        renderer, settings = _comfy_settings(script, renderer, comfy, False, False)
    except StoryError as e:
        _echo(f"storyc: {e}", err=True)
        sys.exit(2)
    options = BuildOptions(renderer=renderer, comfy=settings, jobs=jobs or max(os.cpu_count() or 1, 1),
                           fill_in=fill_in)
    opened = {"done": not open_player}
    page = _preview_page(script, host, port) if serve else None

    def emit(r) -> None:
        if page is not None:
            page.rebuilt(r)
        stamp = time.strftime("%H:%M:%S")
        what = "; ".join(r.changed) or ("first build" if r.first else "no shot or line changed")
        if r.error is not None:
            if r.error.diagnostics:
                _print_diagnostics(r.error.diagnostics, r.error.sources)
            else:
                _echo(f"storyc: {r.error}", err=True)
            _echo(f"{stamp} {_shown(script)}: build failed; the last good film stays in place", err=True)
            return
        _echo(f"{stamp} {what}: {r.redone} in {r.seconds:.1f}s -> {_shown(r.output)}", err=True)
        if not opened["done"]:
            opened["done"] = True
            click.launch(str(r.output))

    _echo(f"watching {script} (Ctrl-C to stop)", err=True)
    stop, finished = threading.Event(), threading.Event()
    watcher = Watcher(script, options, emit, preview_first=preview, say=_say,
                      progress=page.progress if page is not None else None)

    def run() -> None:
        try:
            watcher.run(stop)
        finally:
            finished.set()

    threading.Thread(target=run, daemon=True, name="watch").start()
    # An Event, not Thread.join: a join that Ctrl-C interrupts can mark a running thread as ended
    # (CPython 3.11), and the process would exit while the rebuild still cleans up.
    try:
        while not finished.wait(0.2):
            pass
    except KeyboardInterrupt:
        stop.set()
        finished.wait()
        _echo("storyc: stopped watching; nothing half-written was kept", err=True)
        sys.exit(130)


def _preview_page(script: Path, host: str, port: int):
    """The live preview page's state, its server started on a thread; one line says where."""
    import threading

    from storylang.preview import PreviewState, make_server

    state = PreviewState(script)
    try:
        server = make_server(state, host, port)
    except OSError as e:
        _echo(f"storyc: the preview page cannot listen on {host}:{port} ({e.strerror or e}); "
              "choose another with --port", err=True)
        sys.exit(2)
    threading.Thread(target=server.serve_forever, daemon=True, name="preview").start()
    _echo(f"preview: http://{host}:{server.server_address[1]}/", err=True)
    return state


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--renderer", type=click.Choice(["animatic", "comfy"]), default=None, help="As for build.")
@click.option("--comfy", "comfy", multiple=True, metavar="URL", help="As for build: the servers it would render on.")
@click.option("--burn-subtitles", is_flag=True, help="As for build.")
@click.option("--preview", is_flag=True, help="As for build.")
@click.option("--release", is_flag=True, help="As for build.")
@click.option("--expand", "expand", is_flag=True, help="As for build.")
@click.option("--system-ffmpeg", is_flag=True, help="As for build.")
@click.pass_context
def status(ctx, script: Path, renderer, comfy, burn_subtitles, preview, release, expand, system_ffmpeg) -> None:
    """What a build with these options would redo and why (the same as `storyc build --dry-run`)."""
    ctx.invoke(build, script=script, dry_run=True, renderer=renderer, comfy=comfy, burn_subtitles=burn_subtitles,
               preview=preview, release=release, expand=expand, system_ffmpeg=system_ffmpeg)


def _input_source(gi) -> dict:
    """Where an input of index.json comes from: a file of the film, another render, or the shot's lines."""
    if gi.made_by:
        return {"made_by": gi.made_by}
    if gi.dialogue:
        return {"lines": [key for key, _ in gi.dialogue]}
    return {"file": gi.file}


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--shot", "shots", multiple=True, metavar="ID", help="Only this shot (repeatable).")
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the graphs (default: build/<film>/graphs).")
@click.option("--explain", is_flag=True, help="Show how each prompt and graph was assembled.")
@_node_list_options
def graph(script: Path, shots, output, explain, comfy, object_info) -> None:
    """Write each shot's ComfyUI workflow (API format), validated as the server would."""
    import json

    from storylang import atomic
    from storylang.builddir import film_dir
    from storylang.check import check_film
    from storylang.comfy.graphs import compile_film, compile_music, explain as explain_graph, graph_json
    from storylang.comfy.schema import load_object_info

    # the graphs are as long as the shots will be: the lines are spoken first (cached for the build)
    checked = check_film(script, _display(script), graphs=False)
    film, diags, sources = checked.film, checked.diagnostics, checked.sources
    if film is None:
        _print_diagnostics(diags, sources)
        _echo(f"storyc: {_summary(diags)}", err=True)
        sys.exit(1)
    _known_shots(film, shots, script)
    try:
        info = load_object_info(comfy or object_info)
    except OSError as e:
        _echo(f"storyc: {e}", err=True)
        sys.exit(1)
    expansion = _lock_prompts(film, script)
    compiled = compile_film(film, script.resolve().parent, info, set(shots) or None, checked.timing,
                            expansion.prompts)
    for note in expansion.notes:
        _echo(f"note: {note}", err=True)
    music = [] if shots else list(compile_music(film, script.resolve().parent, info).values())
    for sg in compiled + music:
        diags.extend(sg.diagnostics)
    _print_diagnostics(diags, sources)
    if any(d.severity == "error" for d in diags):
        _echo(f"storyc: {_summary(diags)}; no graphs written", err=True)
        sys.exit(1)
    from storylang.filenames import safe_stem

    out_dir = output or film_dir(script) / "graphs"
    index = {}
    # renders a shot reads (its start still, its cast's sheets) are graphs of their own, made first:
    # each listed once, before the first shot that reads it
    every = list({g.shot.id: g for sg in compiled for g in (*sg.upstream, sg)}.values()) + music
    for sg in every:
        name = f"{'shot_' if sg.template != 'music' else ''}{safe_stem(sg.shot.id)}.json"
        atomic.write_text(out_dir / name, graph_json(sg.graph))
        index[sg.shot.id] = {"graph": name, "template": sg.template,
                             "inputs": [{"name": i.name, "kind": i.kind, **_input_source(i)} for i in sg.inputs]}
        if explain:
            _echo(explain_graph(sg, film))
            _echo("")
    atomic.write_text(out_dir / "index.json", json.dumps(index, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    _graph_provenance(film, script, compiled, expansion.prompts, out_dir / "index.json")
    _echo(f"{len(every)} graphs written to {_shown(out_dir)} (validated against {info.origin})", err=True)


@contextmanager
def _one_line_errors(progress, what: str, interrupted: str):
    """A writer's error as one line (exit 1), Ctrl-C as one line saying what was kept (exit 130)."""
    from storylang.diagnostics import StoryError

    try:
        yield
    except StoryError as e:
        progress.close()
        _echo(f"storyc: {what}{e}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        progress.close()
        _echo(f"storyc: interrupted; {interrupted}", err=True)
        sys.exit(130)


def _known_shots(film, shots, script: Path) -> None:
    """Exit with one line when a --shot names no shot of the film."""
    known = {s.id for s in film.shots}
    unknown = [s for s in shots if s not in known]
    if unknown:
        _echo(f"storyc: no shot {unknown[0]} in {script} (shots: {', '.join(s.id for s in film.shots)})", err=True)
        sys.exit(1)


def _graph_provenance(film, script: Path, compiled, prompts: dict, index: Path) -> None:
    """index.json.provenance.json: the files read and each written graph's digest."""
    import json

    from storylang.cache import digest
    from storylang.comfy.graphs import graph_json
    from storylang.provenance import manifest, write_beside

    origin = manifest(film, script, "comfy", None, None, prompts)
    graphs = {sg.shot.id: digest(json.loads(graph_json(sg.graph))) for sg in compiled}
    origin["shots"] = {k: {**v, "graph": graphs[k], "picture": []} for k, v in origin["shots"].items() if k in graphs}
    write_beside(index, origin)


def _lock_prompts(film, script: Path):
    """The prompts the lockfile pins for this film (no request is made)."""
    from storylang.expand import Options, expand_film
    from storylang.diagnostics import StoryError

    try:
        return expand_film(film, script, Options(requests=False))
    except StoryError as e:
        _echo(f"storyc: {e}", err=True)
        sys.exit(1)


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--shot", "shots", multiple=True, metavar="ID", help="Only this shot (repeatable).")
@click.option("--refresh", is_flag=True, help="Ask again even where the lock has an answer.")
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests at once.")
def expand(script: Path, shots, refresh: bool, jobs: int) -> None:
    """Ask the LLM for every shot's prompts and pin them in FILE.story.lock; print what changed."""
    from rich.console import Console

    from storylang import expand as expand_mod
    from storylang.resolve import resolve_file

    film, diags, sources = resolve_file(script, _display(script))
    if film is None or any(d.severity == "error" for d in diags):
        _print_diagnostics(diags, sources)
        _echo(f"storyc: {_summary(diags)}", err=True)
        sys.exit(1)
    _known_shots(film, shots, script)
    console = Console(stderr=True)
    progress = _progress(console)
    opts = expand_mod.Options(expand=True, required=True, only=set(shots) or None, refresh=refresh, jobs=jobs)
    with _one_line_errors(progress, "", f"{script.name}.lock holds every answer received"):
        result = expand_mod.expand_film(film, script, opts, progress)
    progress.close()
    order = {s.id: i for i, s in enumerate(film.shots)}
    for shot, before, after in sorted(result.changed, key=lambda c: order[c[0].id]):
        _echo(expand_mod.diff(shot, before, after), nl=False)
    _print_diagnostics(result.problems, sources)
    lock = expand_mod.lock_mod.lock_path(script)
    _echo(f"{_shown(lock)}: {result.asked} asked, {result.reused} from the lock, {len(result.changed)} changed"
               + (f", {len(result.dropped)} dropped (shots no longer in the film)" if result.dropped else ""), err=True)
    if result.problems:
        _echo(f"storyc: {_count(len(result.problems), 'shot')} not expanded", err=True)
        sys.exit(1)


@main.command()
@click.argument("prose", type=click.Path(path_type=Path, dir_okay=False))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The script to write (.story).")
@click.option("--shots", type=click.IntRange(1, 500), default=None, help="About how many shots.")
@click.option("--style", default=None, help='The look of the pictures, e.g. "watercolor, muted palette".')
@click.option("--music", "music_dir", type=click.Path(path_type=Path, file_okay=False),
              help="A folder of music files the scenes may be cued to.")
@click.option("--force", is_flag=True, help="Replace an existing script.")
def draft(prose: Path, output: Path, shots, style, music_dir, force: bool) -> None:
    """Draft a .story script from prose (a story, a chapter, a synopsis) with an LLM; yours to edit."""
    from rich.console import Console

    from storylang import atomic
    from storylang.check import check_film
    from storylang.draft import draft as run_draft
    from storylang.expand import endpoint

    if output.exists() and not force:
        _echo(f"storyc: {output} exists; choose another -o, or --force to replace it", err=True)
        sys.exit(1)
    console = Console(stderr=True)
    progress = _progress(console)
    with _one_line_errors(progress, "draft failed: ", "nothing was written"):
        ep = endpoint(None, output.resolve())
        from storylang.expand.llm import untrusted_notice

        if untrusted_notice(ep):
            _say("storyc: " + untrusted_notice(ep))
        result = run_draft(prose, output, ep, shots, style,
                           check=lambda p: check_film(p, p.name, graphs=False).diagnostics, progress=progress,
                           music_dir=music_dir)
        atomic.write_text(output, result.text)
    progress.close()
    o = result.outline
    n = sum(len(s.shots) for s in o.scenes)
    _echo(f"{_shown(output)}: {_count(len(o.scenes), 'scene')}, {_count(n, 'shot')}, "
               f"{_count(len(o.characters), 'character')} (outline asked {result.rounds} time"
               f"{'s' if result.rounds != 1 else ''}); edit it, then storyc build {_shown(output)}", err=True)


@main.group()
def template() -> None:
    """Graph templates: bring your own ComfyUI workflow."""


@template.command("import")
@click.argument("workflow", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write the API-format graph (default: templates/graphs/<name>.json).")
@_node_list_options
def template_import(workflow: Path, output, comfy, object_info) -> None:
    """Convert a workflow saved from ComfyUI's editor into API format, and validate it."""
    import json

    from storylang import atomic
    from storylang.comfy.editor_format import ImportProblem, convert
    from storylang.comfy.graphs import graph_json
    from storylang.comfy.schema import load_object_info, validate

    try:
        data = json.loads(workflow.read_text(encoding="utf-8"))
        info = load_object_info(comfy or object_info)
        converted = convert(data, info)
    except (ValueError, UnicodeDecodeError) as e:
        _echo(f"{workflow}: error: not a JSON workflow ({e})", err=True)
        sys.exit(1)
    except (ImportProblem, OSError) as e:
        _echo(f"{workflow}: error: {e}", err=True)
        sys.exit(1)
    for note in converted.notes:
        _echo(f"{workflow}: note: {note}", err=True)
    problems = validate(converted.graph, info)
    for p in problems:
        _echo(f"{workflow}: error: {p.text()}" + (f" ({p.hint})" if p.hint else ""), err=True)
    if problems:
        _echo(f"storyc: {len(problems)} problem{'s' * (len(problems) != 1)}; nothing written", err=True)
        sys.exit(1)
    target = output or Path("templates") / "graphs" / (workflow.stem + ".json")
    atomic.write_text(target, graph_json(converted.graph))
    _echo(f"{target}: {len(converted.graph)} nodes, valid on {info.origin}; put Jinja expressions "
               "such as {{ prompt.positive }} where the film's values go and save it as .json.j2", err=True)


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--format", "fmt", type=click.Choice(["otio", "edl", "fcp7", "fcpx", "fountain"]), required=True,
              help="OpenTimelineIO, CMX3600 EDL, Final Cut Pro 7 XML (Premiere, Resolve), FCPXML, or the "
                   "screenplay as Fountain.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Where to write it (default: build/<film>/<film>.<ext>).")
@click.option("--media", type=click.Path(path_type=Path, file_okay=False),
              help="Copy (or hard-link) every file it uses into this folder, with shot-numbered names.")
@click.option("--force", is_flag=True, help="Replace an -o file that storyc did not write.")
def export(script: Path, fmt: str, output, media, force: bool) -> None:
    """The film's edit list as an editor's timeline (builds first; a built film is reused)."""
    from storylang.build import BuildOptions, build as run_build
    from storylang.diagnostics import StoryError

    _may_write(script, output, force)
    if fmt == "fountain":
        _export_fountain(script, output)
        return
    try:
        report = run_build(script, BuildOptions())
        _timeline_export(script, report, fmt, output, media)
    except StoryError as e:
        if e.diagnostics:
            _print_diagnostics(e.diagnostics, e.sources)
        _echo(f"storyc: export failed: {e if not e.diagnostics else _summary(e.diagnostics)}", err=True)
        sys.exit(1)


def _may_write(script: Path, output: Path | None, force: bool) -> None:
    """Exit with one line if -o would replace the script, a file the film reads, or (without
    --force) a file storyc did not write."""
    if output is None:
        return
    from storylang import output as output_mod, stamp
    from storylang.resolve import resolve_file

    film, _diags, _sources = resolve_file(script, _display(script))
    inputs = stamp.inputs(film, script) if film is not None else {script.resolve()}
    problem = output_mod.export_problem(output, force, inputs | {script.resolve()})
    if problem:
        _echo(f"storyc: {problem}", err=True)
        sys.exit(1)


def _timeline_export(script: Path, report, fmt: str, output=None, media=None) -> None:
    """Write one timeline format of a built film (build/<film>/<film>.<ext> unless told where)."""
    from storylang import export as export_mod
    from storylang.resolve import resolve_file
    from storylang.timeline import Timeline

    film, _diags, _sources = resolve_file(script, _display(script))
    timeline = Timeline.model_validate_json(report.timeline.read_text(encoding="utf-8"))
    target = output or report.timeline.parent / f"{script.stem}{export_mod.FORMATS[fmt][1]}"
    gathered = export_mod.write(timeline, film, script.resolve().parent, fmt, target, media,
                                prompts=_lock_prompts(film, script).prompts, origin=report.provenance)
    _echo(f"{_shown(target)}: {len(timeline.clips)} clips, {len(timeline.speech)} lines, "
               f"{len(timeline.chapters)} scenes ({fmt})"
               + (f"; {gathered} media files in {_shown(media)}" if media else ""), err=True)


@main.command()
@click.argument("output", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--json", "as_json", is_flag=True, help="The manifest as JSON.")
def provenance(output: Path, as_json: bool) -> None:
    """Where a film (or a timeline, board or graph index) came from: storyc, git, files, shots."""
    import json

    from storylang import provenance as prov
    from storylang.diagnostics import StoryError
    from storylang.toolchain import find_ffmpeg

    try:
        found = prov.read(output, find_ffmpeg().path)
    except (StoryError, ValueError) as e:
        _echo(f"storyc: {e}", err=True)
        sys.exit(1)
    _echo(json.dumps(found, indent=2, sort_keys=True, ensure_ascii=False) if as_json else prov.describe(found))


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--comfy", "comfy", multiple=True, metavar="URL",
              help="A ComfyUI server (repeat for a pool; default: STORYC_COMFY or storyc.toml).")
@click.option("-o", "--output", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for the sheets (default: build/<film>/sheets).")
def sheets(script: Path, comfy, output) -> None:
    """Render only the characters' sheets, to settle a face before any shot is rendered."""
    import os

    from rich.console import Console

    from storylang.build import BuildOptions, render_sheets
    from storylang.diagnostics import StoryError

    try:
        _, settings = _comfy_settings(script, "comfy", comfy, False, False)
    except StoryError as e:
        _echo(f"storyc: {e}", err=True)
        sys.exit(2)
    options = BuildOptions(renderer="comfy", comfy=settings, jobs=max(os.cpu_count() or 1, 1))
    progress = _progress(Console(stderr=True))
    try:
        written, failed = render_sheets(script, options, output, progress)
    except StoryError as e:  # a ComfyError is one too: a dead server is one line
        progress.close()
        if e.diagnostics:
            _print_diagnostics(e.diagnostics, e.sources)
        _echo(f"storyc: no sheets made: {_summary(e.diagnostics) if e.diagnostics else e}", err=True)
        sys.exit(1)
    progress.close()
    for name, path in written.items():
        _echo(f"{name}: {_shown(path)}")
    for name, (message, hint, server) in failed.items():
        _echo(f"storyc: {name}'s sheet failed on {server}: {message}" + (f" ({hint})" if hint else ""), err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="board.pdf or board.html (default: build/<film>/<film>-board.pdf).")
@click.option("--force", is_flag=True, help="Replace an -o file that storyc did not write.")
def board(script: Path, output, force: bool) -> None:
    """The storyboard to print: a panel per shot with its picture, words and camera (builds first)."""
    from storylang import board as board_mod
    from storylang.provenance import write_beside
    from storylang.build import BuildOptions, build as run_build
    from storylang.builddir import film_dir
    from storylang.diagnostics import StoryError
    from storylang.resolve import resolve_file
    from storylang.timeline import Timeline
    from storylang.toolchain import find_ffmpeg

    target = output or film_dir(script) / f"{script.stem}-board.pdf"
    if target.suffix.lower() not in (".pdf", ".html", ".htm"):
        _echo(f"storyc: {target.name}: a board is written as .pdf or .html", err=True)
        sys.exit(2)
    _may_write(script, output, force)
    try:
        report = run_build(script, BuildOptions(edit_only=True))  # the pictures and the edit list, no film
        film, _diags, _sources = resolve_file(script, _display(script))
        timeline = Timeline.model_validate_json(report.timeline.read_text(encoding="utf-8"))
        folder = report.timeline.parent
        parts = board_mod.sections(film, timeline, script.resolve().parent, folder / "board", find_ffmpeg().path)
        cast = board_mod.sheets(film, script.resolve().parent, folder / "sheets", folder / "board")
        if target.suffix.lower() == ".pdf":
            pages = board_mod.write_pdf(parts, film, target, timeline.script_digest, cast)
            write_beside(target, report.provenance)
        else:
            board_mod.write_html(parts, film, target, timeline.script_digest, report.provenance, cast)
            pages = None
    except StoryError as e:
        if e.diagnostics:
            _print_diagnostics(e.diagnostics, e.sources)
        _echo(f"storyc: board failed: {e if not e.diagnostics else _summary(e.diagnostics)}", err=True)
        sys.exit(1)
    panels = sum(len(p.panels) for p in parts)
    _echo(f"{_shown(target)}: {_count(panels, 'panel')}, {_count(len(parts), 'scene')}"
          + (f", {_count(len(cast), 'character sheet')}" if cast else "")
          + (f", {_count(pages, 'page')}" if pages else ""), err=True)


def _export_fountain(script: Path, output) -> None:
    """The screenplay of a script as Fountain (no build needed)."""
    from storylang import atomic
    from storylang.builddir import film_dir
    from storylang.diagnostics import StoryError
    from storylang.fountain import to_fountain
    from storylang.syntax.parse import parse_file

    tree, diags, text = parse_file(script, _display(script))
    if tree is None or any(d.severity == "error" for d in diags):
        _print_diagnostics(diags, {_display(script): text} if text else {})
        _echo(f"storyc: export failed: {_summary(diags)}", err=True)
        sys.exit(1)
    target = output or film_dir(script) / f"{script.stem}.fountain"
    try:
        atomic.write_text(target, to_fountain(tree))
    except StoryError as e:
        _echo(f"storyc: export failed: {e}", err=True)
        sys.exit(1)
    scenes = sum(1 for item in tree.items if type(item).__name__ == "Scene")
    _echo(f"{_shown(target)}: the screenplay, {_count(scenes, 'scene')} (fountain)", err=True)


@main.command("import")
@click.argument("screenplay", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The script to write (.story).")
@click.option("--force", is_flag=True, help="Replace an existing script.")
def import_(screenplay: Path, output: Path, force: bool) -> None:
    """A Fountain screenplay as a .story script (what the screenplay does not say is guessed, with notes)."""
    import os

    from storylang import atomic
    from storylang.diagnostics import StoryError
    from storylang.fountain import import_text
    from storylang.resolve import resolve_file

    if output.exists() and not force:
        _echo(f"storyc: {output} exists; choose another -o, or --force to replace it", err=True)
        sys.exit(1)
    try:
        text = screenplay.read_text(encoding="utf-8-sig")
        story = import_text(text, screenplay.name, output.name)
    except UnicodeDecodeError as e:
        _echo(f"storyc: {screenplay}: not UTF-8 text (byte {e.start}); save it as UTF-8", err=True)
        sys.exit(1)
    except StoryError as e:
        _echo(f"storyc: import failed: {e}", err=True)
        sys.exit(1)
    probe = output.with_name(f".{output.stem}.import-{os.getpid()}.story")
    try:
        atomic.write_text(probe, story)
        film, diags, sources = resolve_file(probe, _display(output))
    finally:
        probe.unlink(missing_ok=True)
    errors = [d for d in diags if d.severity == "error"]
    if film is None or errors:
        _print_diagnostics(errors, {_display(output): story})
        _echo(f"storyc: import failed: the script made from {screenplay.name} does not check "
                   f"({_summary(errors)}); nothing was written", err=True)
        sys.exit(1)
    atomic.write_text(output, story)
    guesses = story.count('note "guess:')
    _echo(f"{_shown(output)}: {_count(len(film.scenes), 'scene')}, {_count(len(film.shots), 'shot')}, "
               f"{_count(len(film.characters), 'character')}"
               + (f"; {guesses} {'guess' if guesses == 1 else 'guesses'} left as notes" if guesses else "") + "; storyc check it", err=True)


@main.command()
@click.argument("script", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--all", "everything", is_flag=True, help="Remove the whole build directory: cache and films.")
def clean(script: Path, everything: bool) -> None:
    """Remove what killed builds left behind (partial files, scratch folders); --all removes every build output."""
    from storylang import builddir

    root = builddir.build_root(script, create=False)
    if not root.is_dir():
        _echo(f"{_shown(root)}: nothing to clean", err=True)
        return
    if everything:
        try:
            builddir.require_ours(root)
            with builddir.film_lock(builddir.film_dir(script, create=False), wait=False):
                freed = builddir.remove_all(root)
        except builddir.Busy as e:
            _echo(f"storyc: {e}; wait for it to finish", err=True)
            sys.exit(1)
        except builddir.UnsafeBuildFolder as e:
            _echo(f"storyc: {e}", err=True)
            sys.exit(1)
        what = "everything"
    else:
        found = builddir.leftovers(root)
        freed = builddir.remove(found)
        what = _count(len(found), "leftover")
    _echo(f"{_shown(root)}: removed {what}, {freed / 1e6:.1f} MB freed", err=True)


@main.command()
def doctor() -> None:
    """Report which ffmpeg and voice engine are in use, and what is missing."""
    from storylang.toolchain import ToolMissing, find_ffmpeg

    ok = True
    try:
        ff = find_ffmpeg()
        _echo(f"ffmpeg        {ff.version}  ({ff.origin}: {ff.path})")
    except ToolMissing as e:
        ok = False
        _echo(f"ffmpeg        missing: {e}")
    try:
        from storylang.speech import engine

        eng = engine()
        _echo(f"voice engine  {eng.name}  (pyttsx3, library from {eng.origin}; {len(eng.voices())} voices)")
    except Exception as e:  # the engine's own failures vary by machine
        ok = False
        _echo(f"voice engine  missing: {e}; fix: pip install pyttsx3 espeakng-loader")
    try:
        from storylang.render.cards import font

        f = font(20)
        name = getattr(f, "path", None) or "Pillow's built-in font"
        _echo(f"card font     {name}")
    except Exception as e:  # pragma: no cover
        ok = False
        _echo(f"card font     missing: {e}")
    if not ok:
        sys.exit(1)


@main.command()
@click.option("--language", "-l", help="Only voices for this language, e.g. en.")
def voices(language: str | None) -> None:
    """List the voices a script can name (voice "en-us+f3": a voice, then an optional +variant)."""
    from storylang.speech import engine

    eng = engine()
    for v in eng.voices():
        if language and not any(lang.startswith(language) for lang in v.languages) and not v.id.startswith(language):
            continue
        # a script may name a voice by its id or by its language (en-gb is the voice "en")
        also = [lang for lang in v.languages if lang != v.id]
        _echo(f"{v.id:<16} {v.name}" + (f"  (also: {', '.join(also)})" if also else ""))
    if eng.variants:
        _echo("\nvariants: " + " ".join(f"+{x}" for x in eng.variants))


@main.command()
@click.option("--stdio", is_flag=True, help="Speak LSP over stdin and stdout (the default, and the only way).")
def lsp(stdio: bool) -> None:
    """The language server for editors: diagnostics, completion, hover, definitions, rename (docs/editors.md)."""
    from storylang.lsp.server import main as serve

    serve()


if __name__ == "__main__":  # pragma: no cover
    main()
