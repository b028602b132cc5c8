"""The `storyc` command line: parse arguments, call one function, print."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from storylang import __version__


def _display(path: Path) -> str:
    return str(path)


def _print_diagnostics(diagnostics, sources, fmt: str = "text") -> None:
    from storylang.diagnostics import render_json, render_text, sort_key

    diagnostics = sorted(diagnostics, key=sort_key)
    if fmt == "json":
        click.echo(render_json(diagnostics))
    elif diagnostics:
        click.echo(render_text(diagnostics, sources), err=True)


def _summary(diagnostics) -> str:
    errors = sum(1 for d in diagnostics if d.severity == "error")
    warnings = sum(1 for d in diagnostics if d.severity == "warning")
    parts = []
    if errors:
        parts.append(f"{errors} error{'s' * (errors != 1)}")
    if warnings:
        parts.append(f"{warnings} warning{'s' * (warnings != 1)}")
    return ", ".join(parts)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="storyc")
def main() -> None:
    """storyc: compile a .story screenplay into a film."""


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", help="Diagnostics as text or JSON.")
@click.option("--dump", is_flag=True, help="Print the resolved film as JSON.")
def check(files: tuple[Path, ...], fmt: str, dump: bool) -> None:
    """Parse, resolve and validate scripts; report every problem found."""
    from storylang.check import check_film
    from storylang.diagnostics import has_errors

    all_diags = []
    sources: dict[str, str] = {}
    dumps = []
    for path in files:
        film, diags, srcs = check_film(path, _display(path))
        all_diags.extend(diags)
        sources.update(srcs)
        if film is not None and dump:
            dumps.append(film.model_dump_json(indent=2))
        if film is not None and fmt == "text" and not dump:
            seconds = film.frames / film.fps
            click.echo(f"{path}: {len(film.scenes)} scenes, {len(film.shots)} shots, "
                       f"{_clock(float(seconds))} at {film.width}x{film.height} {float(film.fps):g}fps", err=True)
    _print_diagnostics(all_diags, sources, fmt)
    for d in dumps:
        click.echo(d)
    if fmt == "text" and all_diags:
        click.echo(f"storyc: {_summary(all_diags)}", err=True)
    if has_errors(all_diags):
        sys.exit(1)


def _clock(seconds: float) -> str:
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
        if tree is None:
            _print_diagnostics(diags, {_display(path): text} if text else {})
            failed += 1
            continue
        new = format_script(tree, text, number_shots=number)
        if new == text:
            continue
        changed += 1
        if diff:
            click.echo("".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                    f"{path}", f"{path} (formatted)")))
        if check_only:
            click.echo(f"would reformat {path}", err=True)
        elif not diff:
            atomic.write_text(path, new)
            click.echo(f"reformatted {path}", err=True)
    if failed:
        click.echo(f"storyc: {failed} file{'s' * (failed != 1)} could not be read", err=True)
        sys.exit(1)
    if check_only and changed:
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
