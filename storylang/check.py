"""`storyc check`: everything that can be known about a film before anything is rendered.

Parse and resolve; speak the lines (into the build cache, so the build reuses them) and
fix every shot's length by the build's own timing rule; for a film that names a model,
compile and validate every shot's graph. What check accepts, the build builds.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from storylang.builddir import build_root
from storylang.cache import Cache
from storylang.diagnostics import Diagnostic, StoryError
from storylang.resources import user_cache_dir
from storylang.film import Film
from storylang.render.cards import card_warnings
from storylang.resolve import resolve_file
from storylang.timing import Timing, time_film


@dataclass
class Checked:
    film: Film | None
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    timing: Timing | None = None
    notes: list[str] = field(default_factory=list)


def check_film(path: Path, display: str | None = None, object_info: str = "full", graphs: bool = True,
               speak: bool = True, jobs: int | None = None, loader=None, memo=None) -> Checked:
    """`loader`: where the script's text comes from (the language server's holds unsaved edits);
    `memo`: a GraphMemo kept from one check to the next (the language server's)."""
    film, diags, sources = resolve_file(path, display, loader)
    result = Checked(film, diags, sources)
    # unknown voices at their `voice`/`narrator` lines, in the same round as every other mistake
    # (the speech stage would only meet them at the first line spoken, once the rest was fixed)
    voices = _voice_problems(path, display or str(path), loader) if speak else []
    diags.extend(voices)
    if film is None or voices:
        result.film = None
        return result
    if not film.shots:  # what check accepts, the build builds: a film of nothing is not one
        diags.append(no_shots(display or str(path)))
    if speak:
        result.timing = _timing(film, path, jobs or os.cpu_count() or 1, diags)
    diags.extend(_lock_warnings(film, path))
    diags.extend(card_warnings(film))  # the animatic draws every film that is not rendered on a server
    if graphs and any(s.render.model for s in film.shots):
        from storylang.comfy.graphs import compile_film
        from storylang.comfy.schema import load_object_info

        info = load_object_info(object_info)
        for sg in compile_film(film, path.resolve().parent, info, timing=result.timing, memo=memo):
            diags.extend(sg.diagnostics)
    if any(d.severity == "error" for d in diags):
        result.film = None
    return result


ORIGINS = {"named": "named in the script", "file name": "by its file name",
           "assumed": "assumed, as its name says none"}


def model_families(film: Film, root: Path) -> list[str]:
    """Each model file the film uses, its family, how the family was found, and its shots."""
    from storylang.families import families

    known = families(root)
    used: dict[tuple, list[str]] = {}
    for shot in film.shots:
        r = shot.render
        if r.model:
            used.setdefault((r.model, r.family, r.family_origin), []).append(shot.id)
    lines = []
    for (model, family, origin), shots in used.items():
        title = known[family].title if family in known else family
        lines.append(f"{model}: {title} (family {family}, {ORIGINS[origin]}); "
                     f"shot{'s' * (len(shots) != 1)} {', '.join(shots)}")
    return lines


def _lock_warnings(film: Film, path: Path) -> list[Diagnostic]:
    from storylang.expand import lock_warnings

    try:
        return lock_warnings(film, path)
    except StoryError as e:  # an unreadable lockfile or prompt book: one line, at the script
        return [Diagnostic(severity="error", code="lock", file=str(path), message=str(e))]


def _voice_problems(path: Path, display: str, loader=None) -> list[Diagnostic]:
    """Every voice a script names that the engine does not know, at the statement that names it."""
    from storylang.resolve import _LOADER
    from storylang.speech import SpeechError, engine

    def settings(node):
        for s in getattr(node, "settings", ()) or ():
            yield s
        for child in getattr(node, "body", ()) or ():
            yield from settings(child)

    def on_espeak(s) -> bool:  # a server's voices are its own: not checked against espeak-ng's
        words = [v.text.lower() for v in s.values[1:]]
        return not any(a == "engine" and b != "espeak" for a, b in zip(words, words[1:]))

    named = [(src, s.values[0]) for src, item in (loader or _LOADER).load(path, display).items for s in settings(item)
             if s.key in ("voice", "narrator") and s.values and s.values[0].kind in ("string", "word")
             and on_espeak(s)]
    if not named:
        return []
    try:
        eng = engine()
    except SpeechError:
        return []  # no engine: the speech stage says so in one line
    out = []
    for src, v in named:
        problem = eng.check_voice(v.text)
        if problem:
            out.append(Diagnostic(severity="error", code="unknown-voice", file=src.display, span=v.span,
                                  message=problem, hint="see `storyc voices` for the voices a script can name"))
    return out


def no_shots(file: str) -> Diagnostic:
    return Diagnostic(severity="error", code="no-shots", message="this film has no shots yet", file=file,
                      hint="add a scene heading and a shot under it")


def speech_cache(script: Path) -> Path:
    """Where check keeps the lines it speaks: the build's cache (the build reuses them), or, when
    the project cannot be written (a read-only checkout in CI) or its build folder is unsafe,
    the user's own cache folder, else a temporary one: check never needs to write the project."""
    try:
        folder = build_root(script) / "cache"
        folder.mkdir(parents=True, exist_ok=True)
        if os.access(folder, os.W_OK):
            return folder
    except (OSError, StoryError):
        pass
    mine = user_cache_dir()
    if mine is not None:
        return mine / "speech-check"
    return Path(tempfile.mkdtemp(prefix="storyc-speech-"))


def _timing(film: Film, path: Path, jobs: int, diags: list[Diagnostic]) -> Timing | None:
    from storylang.speech import offline, speak_film

    try:
        # check asks no server: a line a server would speak is timed with espeak-ng's default voice
        spoken = (speak_film(offline(film), Cache(speech_cache(path)), jobs) if any(s.lines for s in film.shots)
                  else None)
    except StoryError as e:
        diags.extend(e.diagnostics)
        return None
    timing = time_film(film, spoken.seconds() if spoken else {})
    diags.extend(timing.errors)
    diags.extend(timing.warnings)
    return timing
