"""The built-in animatic renderer: a storyboard card per shot, words as overlays.

Cards show only the picture (tint, horizon, figures sized by the framing); the shot's words
(heading, number, action, cues, the spoken line) are transparent overlays laid on in the
edit, so they stay still while the camera moves the card. Keyframed shots use their two
images and source clips their video; title and end cards are drawn here for every renderer.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from storylang import atomic, waiting
from storylang.cache import Cache, digest
from storylang.film import Film, Shot
from storylang.render import END_CARD, TITLE_CARD, Overlay, Plan, RenderContext, Rendered, ShotPicture, rel
from storylang.render import cards
from storylang.timing import Timing


@dataclass(frozen=True)
class Drawing:
    """An image still to draw, and the shot it belongs to."""

    shot: str
    draw: Callable[[], object]

    def __call__(self):
        return self.draw()


def card_key(film: Film, shot: Shot) -> str:
    """Exactly what the storyboard card's picture shows, and the drawing code's version."""
    scene = film.scenes[shot.scene]
    return digest({
        "stage": cards.STAGE_VERSION, "size": [film.width, film.height],
        "scene": {"heading": scene.heading, "time": scene.time},
        "shot": {"framing": shot.framing, "cast": shot.cast},
    })


def overlay_key(film: Film, shot: Shot, labels: cards.Labels) -> str:
    scene = film.scenes[shot.scene]
    return digest({"stage": cards.OVERLAY_VERSION, "size": [film.width, film.height],
                   "scene": {"heading": scene.heading, "time": scene.time}, "labels": labels.key()})


def shot_picture(film: Film, shot: Shot, cache: Cache, root: Path) -> ShotPicture:
    """The shot's picture without rendering: its source clip, its keyframes, its start picture (the
    first frame the video model would move from) or its card."""
    if shot.source:
        return ShotPicture("video", (shot.source.file,), shot.source.start)
    if shot.keyframes:
        return ShotPicture("keyframes", (shot.keyframes.start, shot.keyframes.end))
    if shot.render.start_image:
        return ShotPicture("still", (shot.render.start_image,))
    return ShotPicture("still", (rel(cache.path("cards", card_key(film, shot), ".png"), root),))


def title_cards(film: Film, cache: Cache, root: Path, pictures: dict[str, ShotPicture]) -> dict:
    """The title and end cards the film asks for, as pictures; returns the ones to draw (path → drawer)."""
    todo = {}
    for card, frames, words, byline in ((TITLE_CARD, film.title_frames, film.title, film.author),
                                        (END_CARD, film.end_frames, film.end, "")):
        if not frames:
            continue
        key = digest({"stage": cards.STAGE_VERSION, "card": card, "size": [film.width, film.height],
                      "words": words, "byline": byline})
        path = cache.path("cards", key, ".png")
        pictures[card] = ShotPicture("still", (rel(path, root),))
        if not path.is_file():
            todo[path] = lambda words=words, byline=byline: cards.draw_title_card(film, words, byline)
    return todo


def draw_all(todo: dict, jobs: int, advance=lambda: None) -> None:
    """Draw images (path → drawer) on worker threads (Pillow releases the GIL), each written atomically."""

    def draw(path: Path) -> None:
        image = todo[path]()
        with atomic.atomic_path(path, suffix=".png") as tmp:
            image.save(tmp, format="PNG", compress_level=1)
        advance()

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        waiting.results([pool.submit(draw, item) for item in todo])


def _overlap(transition) -> int:
    """The frames a transition shares between two shots (none for a cut)."""
    return transition.frames if transition is not None and transition.kind != "cut" else 0


def on_screen(film: Film, timing: Timing) -> dict[str, tuple[int, int]]:
    """(enter, leave) per shot: the frames between the end of its way in (a dissolve or wipe from
    the shot before) and the start of its way out, as the edit lays them."""
    out = {}
    shots = film.shots
    for i, shot in enumerate(shots):
        enter = _overlap(shots[i - 1].transition) if i > 0 else 0
        has_next = i + 1 < len(shots) or bool(film.end_frames)
        out[shot.id] = (enter, timing.shots[shot.id].frames - (_overlap(shot.transition) if has_next else 0))
    return out


def with_overlays(film: Film, timing: Timing, pictures: dict[str, ShotPicture], ctx: RenderContext,
                  only: set[str] | None = None, draw: bool = True) -> tuple[dict[str, ShotPicture], dict]:
    """Each still or keyframed shot (of `only`, or all) with its words as overlays; and the overlays
    that were missing (path → drawer), drawn unless `draw` is False."""
    todo = {}
    out = dict(pictures)
    screen = on_screen(film, timing)
    for shot in film.shots:
        if only is not None and shot.id not in only:
            continue
        src = pictures[shot.id]
        if src.kind == "video":
            continue
        st = timing.shots[shot.id]
        overlays = []
        for start, end, labels in cards.overlay_schedule(film, shot, st.frames, st.lines, ctx.with_lines,
                                                             screen[shot.id]):
            path = ctx.cache.path("overlays", overlay_key(film, shot, labels), ".png")
            overlays.append(Overlay(file=rel(path, ctx.root), start=start, end=end))
            if not path.is_file():
                todo[path] = Drawing(shot.id, lambda shot=shot, labels=labels: cards.draw_overlay(
                    film, film.scenes[shot.scene], labels))
        out[shot.id] = replace(src, overlays=tuple(overlays))
    if draw:
        draw_all(todo, ctx.jobs)
    return out, todo


class AnimaticRenderer:
    name = "animatic"

    def _cards(self, film: Film, ctx: RenderContext, only: set[str] | None = None):
        pictures, todo, cached = {}, {}, []
        for shot in film.shots:
            if only is not None and shot.id not in only:
                continue
            pictures[shot.id] = src = shot_picture(film, shot, ctx.cache, ctx.root)
            if src.kind != "still":
                continue
            path = ctx.root / src.files[0]
            if path.is_file():
                cached.append(shot.id)
            else:
                todo[path] = lambda shot=shot: cards.draw_card(film, shot)
        return pictures, todo, cached

    def plan(self, film: Film, timing: Timing, ctx: RenderContext) -> Plan:
        pictures, todo, cached = self._cards(film, ctx)
        drawn = {rel(p, ctx.root) for p in todo}
        title_cards(film, ctx.cache, ctx.root, pictures)
        pictures, words = with_overlays(film, timing, pictures, ctx, draw=False)
        return Plan(todo=[s for s, src in pictures.items() if src.kind == "still" and src.files[0] in drawn],
                    cached=cached, pictures=pictures, words=list(dict.fromkeys(d.shot for d in words.values())))

    def render(self, film: Film, timing: Timing, ctx: RenderContext, only: set[str] | None = None) -> Rendered:
        """Cards for every shot (or those in `only`) and the title and end cards, then their overlays."""
        pictures, todo, cached = self._cards(film, ctx, only)
        made = sum(1 for src in pictures.values() if src.kind == "still") - len(cached)
        todo.update(title_cards(film, ctx.cache, ctx.root, pictures))
        ctx.progress.stage("cards", len(todo))
        draw_all(todo, ctx.jobs, ctx.progress.advance)
        pictures, drawn = with_overlays(film, timing, pictures, ctx, only)
        return Rendered(pictures=pictures, made=made, reused=len(cached), labels_drawn=len(drawn))
