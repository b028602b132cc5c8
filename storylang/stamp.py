"""A finished build's stamp: "nothing changed" decided before anything heavy is imported.

After a build that succeeded completely, `build/<film>/stamp.json` records the digest of every
file the film read (scripts, media, templates, storyc.toml), the options, storyc's version and
the film it wrote. A later `storyc build` with the same options first hashes those files and
the film; when all match, the film is up to date and nothing else runs (like make's stamp
files). Anything else, including a missing or unreadable stamp, takes the full build, which
decides for itself. Only the standard library here: this module is on the no-op's path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

VERSION = 2  # 2: paths relative to the script's folder


def _digest(path: Path) -> str | None:
    try:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        return h.hexdigest()
    except OSError:
        return None


def options_of(output, renderer: str, burn_subtitles: bool, preview: bool, release: bool,
               system_ffmpeg: bool) -> dict:
    """The options that change what a build writes (not how fast: jobs, cache size)."""
    return {"output": str(Path(output).resolve()) if output else None, "renderer": renderer,
            "burn_subtitles": burn_subtitles, "preview": preview, "release": release, "system_ffmpeg": system_ffmpeg}


def inputs(film, script: Path) -> set[Path]:
    """Every file a resolved film reads: its scripts, media, the project's templates and storyc.toml."""
    root = script.resolve().parent
    files = {script.resolve()} | {(root / f).resolve() for f in film.files}
    for c in film.characters:
        if c.reference:
            files.add((root / c.reference.file).resolve())
    for shot in film.shots:
        if shot.keyframes:
            files |= {(root / shot.keyframes.start).resolve(), (root / shot.keyframes.end).resolve()}
        if shot.source:
            files.add((root / shot.source.file).resolve())
        if shot.render.start_image:
            files.add((root / shot.render.start_image).resolve())
    for scene in film.scenes:
        if scene.music is not None and scene.music.file:
            files.add((root / scene.music.file).resolve())
    templates = root / "templates"
    if templates.is_dir():
        files |= {p.resolve() for p in templates.rglob("*") if p.is_file()}
    config = project_config(script)
    if config:
        files.add(config.resolve())
        book = _prompt_book(config)
        if book is not None:
            files.add(book)
    lock = script.with_name(script.name + ".lock")  # the expansion stage's lockfile (expand/lock.py)
    if lock.exists():
        files.add(lock.resolve())
    return files


def _prompt_book(config: Path) -> Path | None:
    """The prompt book storyc.toml's [llm] names (expand/book.py), if it does."""
    from storylang.config import tomllib

    try:
        book = tomllib.loads(config.read_text(encoding="utf-8")).get("llm", {}).get("book")
    except (OSError, ValueError):
        return None
    return (config.parent / book).resolve() if isinstance(book, str) else None


def project_config(script: Path) -> Path | None:
    """storyc.toml in the script's folder or a parent, up to the repository root."""
    here = script.resolve().parent
    for folder in (here, *here.parents):
        if (folder / "storyc.toml").is_file():
            return folder / "storyc.toml"
        if (folder / ".git").exists():
            return None
    return None


def stamp_path(script: Path) -> Path:
    from storylang.filenames import film_folder

    return script.resolve().parent / "build" / film_folder(script.stem) / "stamp.json"


def key(options: dict, version: str) -> dict:
    return {"version": VERSION, "storyc": version, "python": sys.version.split()[0], "options": options}


def up_to_date(script: Path, options: dict, version: str) -> Path | None:
    """The film, if the last complete build had these options and nothing it read has changed."""
    try:
        data = json.loads(stamp_path(script).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != key(options, version):
        return None
    root = script.resolve().parent
    for name, digest in data.get("inputs", {}).items():
        if _digest(root / name) != digest:
            return None
    output = root / data.get("output", "")
    if not output.is_file() or _digest(output) != data.get("output_digest"):
        return None
    return output


def write(script: Path, options: dict, version: str, inputs: set[Path], output: Path) -> None:
    """The stamp of a complete build. Paths are relative to the script's folder: a copy of the
    project (build folder and all) checks its own files, never the original's."""
    from storylang import atomic

    root = script.resolve().parent
    data = {"key": key(options, version),
            "inputs": {os.path.relpath(p, root): _digest(p) for p in sorted(inputs)},
            "output": os.path.relpath(output.resolve(), root), "output_digest": _digest(output)}
    atomic.write_text(stamp_path(script), json.dumps(data, indent=1, sort_keys=True) + "\n")


def remove(script: Path) -> None:
    try:
        os.unlink(stamp_path(script))
    except OSError:
        pass
