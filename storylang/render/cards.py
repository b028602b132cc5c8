"""Storyboard frames: one card per shot, drawn with Pillow at the film's format.

A card shows the scene heading, the shot number, framing and cast, simple figures sized by
the framing, the action, the prompt schedule and the camera move as an arrow. Each scene
gets its own deterministic tint so cuts between scenes are visible at a glance.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from storylang.diagnostics import Diagnostic
from storylang.film import Film, Scene, Shot, Where
from storylang.probe import limit_pillow

limit_pillow()  # pictures from scripts and servers: a bomb is refused, never decoded

STAGE_VERSION = "card-7"  # 5: a title too long for its card ends in an ellipsis; 6: small figures' names above
# them; 7: the others' names on their heads, clear of the words' band
OVERLAY_VERSION = "overlay-2"  # 2: words too long for their place end in an ellipsis
SUPERSAMPLE = 1.5  # cards are drawn larger than the film so camera moves stay sharp

# figure height as a fraction of the frame, and how far below the frame it is cut
FIGURE_SCALE = {
    "extreme wide": 0.18, "wide": 0.38, "establishing": 0.22, "aerial": 0.15, "full": 0.72,
    "medium wide": 1.0, "medium": 1.35, "two shot": 1.2, "over the shoulder": 1.4,
    "medium close": 1.8, "close": 2.6, "extreme close": 4.0, "insert": 0.0, "point of view": 0.0,
}


@lru_cache(maxsize=32)
def font(size: int, bold: bool = False) -> ImageFont.ImageFont:
    for name in (("DejaVuSans-Bold.ttf", "DejaVuSans.ttf") if bold else ("DejaVuSans.ttf",)):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def scene_palette(scene: Scene) -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    """(background, ink, accent) for a scene, from its heading: same heading, same colours."""
    h = hashlib.sha256(scene.heading.encode("utf-8")).digest()
    hue = h[0] / 255
    night = any(w in scene.time.upper() for w in ("NIGHT", "DUSK", "EVENING"))
    light = 0.24 if night else 0.80
    bg = tuple(int(c * 255) for c in colorsys.hls_to_rgb(hue, light, 0.35))
    ink = (236, 236, 240) if night else (28, 28, 34)
    accent = tuple(int(c * 255) for c in colorsys.hls_to_rgb((hue + 0.5) % 1, 0.6 if night else 0.38, 0.7))
    return bg, ink, accent


def _pieces(draw: ImageDraw.ImageDraw, word: str, fnt, width: int) -> list[str]:
    """A word too long for a line, broken into pieces that fit."""
    out = []
    while word and draw.textlength(word, font=fnt) > width:
        lo, hi = 1, len(word)
        while lo < hi:  # the longest prefix that fits
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if draw.textlength(word[:mid], font=fnt) <= width else (lo, mid - 1)
        out.append(word[:lo])
        word = word[lo:]
    return out + ([word] if word else [])


def _wrap(draw: ImageDraw.ImageDraw, text: str, fnt, width: int) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        words = [piece for w in para.split() for piece in _pieces(draw, w, fnt, width)]
        line = ""
        for w in words:
            trial = f"{line} {w}".strip()
            if draw.textlength(trial, font=fnt) <= width or not line:
                line = trial
            else:
                lines.append(line)
                line = w
        if line:
            lines.append(line)
    return lines


def _fit(draw: ImageDraw.ImageDraw, text: str, fnt, width: float, lines: int = 1) -> list[str]:
    """`text` wrapped into at most `lines` lines of `width`; what does not fit is cut at a word where
    it can be and said with an ellipsis, never cut off silently at the frame's edge."""
    wrapped = _wrap(draw, text, fnt, int(width))
    if len(wrapped) <= lines:
        return wrapped
    last = wrapped[lines - 1]
    while last and draw.textlength(last + " …", font=fnt) > width:
        last = last.rsplit(" ", 1)[0] if " " in last else last[:-1]
    return wrapped[:lines - 1] + [(last + " …").strip()]


def _arrow(draw, start, end, color, width):
    draw.line([start, end], fill=color, width=width)
    ang = math.atan2(end[1] - start[1], end[0] - start[0])
    size = width * 3.5
    for side in (-0.5, 0.5):
        a = ang + math.pi + side
        draw.line([end, (end[0] + size * math.cos(a), end[1] + size * math.sin(a))], fill=color, width=width)


def _camera_icon(draw, moves: tuple[tuple[str, str], ...], box, color, width):
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rw, rh = (x1 - x0) / 2, (y1 - y0) / 2
    draw.rectangle(box, outline=color, width=max(width // 2, 1))
    for move, direction in moves:
        if move in ("push", "zoom") and direction == "in":
            for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
                _arrow(draw, (cx + sx * rw * 0.9, cy + sy * rh * 0.9), (cx + sx * rw * 0.4, cy + sy * rh * 0.4), color, width)
        elif move in ("pull", "zoom"):
            for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
                _arrow(draw, (cx + sx * rw * 0.3, cy + sy * rh * 0.3), (cx + sx * rw * 0.85, cy + sy * rh * 0.85), color, width)
        elif move in ("pan", "truck"):
            d = -1 if direction == "left" else 1
            _arrow(draw, (cx - d * rw * 0.7, cy), (cx + d * rw * 0.7, cy), color, width)
        elif move in ("tilt", "pedestal", "crane"):
            d = -1 if direction == "up" else 1
            _arrow(draw, (cx, cy - d * rh * 0.7), (cx, cy + d * rh * 0.7), color, width)
        elif move in ("orbit", "roll"):
            r = min(rw, rh) * 0.6
            start, end = (200, 340) if direction == "right" else (340, 200)
            draw.arc([cx - r, cy - r, cx + r, cy + r], min(start, end), max(start, end), fill=color, width=width)
            a = math.radians(end)
            tip = (cx + r * math.cos(a), cy + r * math.sin(a))
            back = math.radians(end - 25 if direction == "right" else end + 25)
            _arrow(draw, (cx + r * math.cos(back), cy + r * math.sin(back)), tip, color, width)
        elif move == "shake":
            pts = [(x0 + rw * 0.2 + i * rw * 0.2, cy + (rh * 0.4 if i % 2 else -rh * 0.4)) for i in range(9)]
            draw.line(pts, fill=color, width=width)
    if not moves or all(move == "static" for move, _ in moves):
        r = min(rw, rh) * 0.35
        draw.line([(cx - r, cy), (cx + r, cy)], fill=color, width=width)
        draw.line([(cx, cy - r), (cx, cy + r)], fill=color, width=width)


def _figure(draw, x, top, height, fill, outline, name, fnt, ink, name_above: bool = False):
    """A simple storyboard figure, head and shoulders, `height` tall from `top`; its name on its
    head, or above it (`name_above`) for a small figure: the chest is where the words' band goes."""
    head = height * 0.13
    width = max(int(height / 110), 3)
    body_top = top + head * 2.2
    draw.polygon([(x - head * 1.7, body_top + head * 0.5), (x + head * 1.7, body_top + head * 0.5),
                  (x + head * 1.2, top + height), (x - head * 1.2, top + height)], fill=fill, outline=outline, width=width)
    draw.rounded_rectangle([x - head * 1.7, body_top, x + head * 1.7, body_top + head * 1.4], radius=head * 0.6,
                           fill=fill, outline=outline, width=width)
    draw.ellipse([x - head * 0.8, top, x + head * 0.8, top + head * 2], fill=fill, outline=outline, width=width)
    if name_above:
        draw.text((x, top - head * 0.4), name, font=fnt, fill=ink, anchor="mb")
    else:
        draw.text((x, top + head), name, font=fnt, fill=ink, anchor="mm")


def draw_card(film: Film, shot: Shot) -> Image.Image:
    """The moving picture of one shot's storyboard card, at SUPERSAMPLE times the film's size.

    Only the picture: the scene's tint, a horizon and the cast as figures sized by the
    framing. Every word (heading, shot number, action, lines, camera) is on the overlay,
    which stays in place while the camera moves this picture.
    """
    W, H = int(film.width * SUPERSAMPLE), int(film.height * SUPERSAMPLE)
    scene = film.scenes[shot.scene]
    bg, ink, accent = scene_palette(scene)
    im = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(im)
    # a horizon and a ground of lines converging on it, so every camera move shows
    horizon = H * 0.58
    ground = tuple(int(b * 0.85 + a * 0.15) for b, a in zip(bg, accent))
    d.rectangle([0, horizon, W, H], fill=ground)
    line = max(int(H / 300), 1)
    for k in range(-8, 9):
        d.line([(W / 2 + k * W * 0.04, horizon), (W / 2 + k * W * 0.5, H)], fill=accent, width=line)
    for k in range(1, 6):
        y = horizon + (H - horizon) * (k / 6) ** 1.6
        d.line([(0, y), (W, y)], fill=accent, width=line)
    scale = FIGURE_SCALE.get(shot.framing, 1.0)
    if shot.cast and scale > 0:
        n = len(shot.cast)
        height = H * 0.62 * scale
        top = H * 0.80 - height if scale < 1 else H * 0.22
        fill = tuple(int(b * 0.6 + a * 0.4) for b, a in zip(bg, accent))
        f_name = font(max(int(H / 30 * min(max(scale, 0.6), 1.6)), 12), True)
        for i, name in enumerate(shot.cast):
            # a small figure's chest is in the lower third, where the action's words are drawn
            _figure(d, W * (i + 1) / (n + 1), top, height, fill, accent, name, f_name, ink, name_above=scale < 1)
    return im


# ---------------------------------------------------------------------------- the overlay

MAX_TEXT = 400  # characters of one text a card shows; a card has room for four lines at most


@dataclass(frozen=True)
class Labels:
    """The words a card shows at one moment; they stay in place while the camera moves the picture."""

    heading: str
    label: str
    detail: str  # name, framing, angle, cast
    setting: str
    action: str
    camera: str
    cue: str = ""  # the prompt-schedule cue in force
    line: str = ""  # the line being spoken: "MARA: Not tonight."
    moves: tuple = ()  # the camera moves, for the icon

    def key(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "moves"} | {"moves": [list(m) for m in self.moves]}


def shot_labels(film: Film, shot: Shot) -> Labels:
    scene = film.scenes[shot.scene]
    label = f"SHOT {shot.number}" if shot.number else (shot.name.upper() if shot.name else f"SHOT {shot.id}")
    framing = shot.framing + (f", {shot.angle}" if shot.angle else "")
    cast = f"  ·  on {', '.join(shot.cast)}" if shot.cast else ""
    name = f"“{shot.name}”  ·  " if shot.name and shot.number else ""
    words = ", ".join(c.move if c.move == "static" else " ".join(x for x in (c.move, c.direction or "", c.speed) if x)
                      for c in shot.camera) or "static"
    moves = tuple((c.move, c.direction or "") for c in shot.camera)
    return Labels(heading=scene.heading, label=label, detail=f"{name}{framing.upper()}{cast}", setting=shot.setting,
                  action=shot.action, camera=words.upper(), moves=moves)


def line_spans(lines: tuple[tuple[int, int], ...], frames: int, enter: int = 0,
               leave: int | None = None) -> list[tuple[int, int]]:
    """Where each line shows on the card, (from, until) in the shot's frames (from == until: never).

    A line shows from when it is spoken until the next one is, but only while its shot is fully
    on screen, from `enter` (the end of a dissolve or wipe into the shot) to `leave` (the start of
    one out of it): a caption does not straddle a shot change, and two shots' lines crossfading
    are unreadable. So a line spoken during the way in appears once the shot is in (at most the
    transition's length late), and a line that has been said leaves when the shot starts to go.
    A line still being spoken then, or one that starts on the way out, stays to the shot's end.
    It also keeps the transitions' frames free of the lines' words, so a line edit re-encodes its
    shot's own frames and no transition.
    """
    leave = frames if leave is None else leave
    if enter >= leave:  # a shot that is never fully on screen: lines as they are spoken
        enter, leave = 0, frames
    froms = [max(at, enter) if at < leave else at for at, _ in lines]
    spans = []
    for i, (at, length) in enumerate(lines):
        nxt = froms[i + 1] if i + 1 < len(lines) else frames
        until = min(nxt, leave) if at < leave and at + length <= leave else nxt
        spans.append((froms[i], max(until, froms[i])))
    return spans


def overlay_schedule(film: Film, shot: Shot, frames: int, lines: tuple[tuple[int, int], ...],
                     with_lines: bool = True, on_screen: tuple[int, int] | None = None) -> list[tuple[int, int, Labels]]:
    """(start, end, labels) spans covering the shot's `frames`: the card changes at each cue and
    where each line shows.

    `lines` are the (offset, length) of the shot's lines from the timing decision; `on_screen` is
    (enter, leave), the frames between the shot's transitions (see line_spans).
    """
    base = shot_labels(film, shot)
    shown = line_spans(lines, frames, *(on_screen or (0, frames))) if with_lines else []
    cuts = {0}
    cuts.update(c.frame for c in shot.schedule if c.frame < frames)
    cuts.update(edge for span in shown for edge in span if edge < frames)
    bounds = sorted(cuts) + [frames]
    spans = []
    for start, end in zip(bounds, bounds[1:]):
        cue = next((c for c in reversed(shot.schedule) if c.frame <= start), None)
        said = [i for i, (a, b) in enumerate(shown) if a <= start < b]
        line = ""
        if said:
            spoken = shot.lines[said[-1]]
            line = f"{spoken.speaker}: {spoken.text}" if spoken.speaker else f"({spoken.text})"
        cue_text = f"at {cue.frame / float(film.fps):g}s: {cue.text}" if cue else ""
        labels = replace(base, cue=cue_text, line=line)
        if spans and spans[-1][2] == labels:
            spans[-1] = (spans[-1][0], end, labels)
        else:
            spans.append((start, end, labels))
    return spans


def _clip_text(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT].rstrip() + "…"


def _band(im: Image.Image, box, colour, opacity: int) -> None:
    band = Image.new("RGBA", (int(box[2] - box[0]), int(box[3] - box[1])), (*colour, opacity))
    im.alpha_composite(band, (int(box[0]), int(box[1])))


def _overlay_fonts(H: int) -> dict:
    return {"head": font(int(H / 24), True), "num": font(int(H / 14), True), "small": font(int(H / 34)),
            "text": font(int(H / 22)), "line": font(int(H / 22), True)}


def _overlay_room(d: ImageDraw.ImageDraw, film: Film, labels: Labels, fonts: dict) -> dict[str, tuple]:
    """Each text of the overlay with the room it has: name → (text, font, width, lines)."""
    W, H = film.width, film.height
    m = int(H * 0.05)
    # the heading and the row below it stop short of the shot's number, the setting at the frame's edge
    beside = W - 2 * m - d.textlength(labels.label, font=fonts["num"]) - m
    return {"heading": (labels.heading, fonts["head"], beside, 1), "detail": (labels.detail, fonts["small"], beside, 1),
            "setting": (labels.setting, fonts["small"], W - 2 * m, 1),
            "action": (labels.action, fonts["text"], int(W * 0.8), 3),
            "line": (labels.line, fonts["line"], int(W * 0.8), 3), "cue": (labels.cue, fonts["small"], int(W * 0.8), 3)}


def _cut(d: ImageDraw.ImageDraw, text: str, fnt, width: float, lines: int) -> bool:
    return len(text) > MAX_TEXT or _wrapped_lines(text, fnt, int(width)) > lines


@lru_cache(maxsize=8192)
def _wrapped_lines(text: str, fnt, width: int) -> int:
    """How many lines `text` wraps to. Remembered: measuring text is most of what checking the
    cards costs, and a film repeats its headings on every shot and an edit changes one shot's words
    (the fonts are `font`'s, made once per size, so they can be part of the key)."""
    return len(_wrap(ImageDraw.Draw(Image.new("RGB", (1, 1))), text, fnt, width))


def draw_overlay(film: Film, scene: Scene, labels: Labels) -> Image.Image:
    """The fixed words of a card, on a transparent RGBA image at the film's size."""
    W, H = film.width, film.height
    bg, ink, accent = scene_palette(scene)
    im = Image.new("RGBA", (W, H), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    m = int(H * 0.05)
    fonts = _overlay_fonts(H)
    f_head, f_num, f_small = fonts["head"], fonts["num"], fonts["small"]
    fitted = {name: _fit(d, _clip_text(text), fnt, width, lines)
              for name, (text, fnt, width, lines) in _overlay_room(d, film, labels, fonts).items()}

    # top band: scene heading, shot number, framing and cast, setting
    rows = 2 + bool(labels.setting)
    _band(im, (0, 0, W, m + f_head.size * 1.35 + f_small.size * 1.4 * (rows - 1) + m * 0.4), bg, 200)
    d.text((m, m), (fitted["heading"] or [""])[0], font=f_head, fill=ink)
    d.text((W - m, m * 0.8), labels.label, font=f_num, fill=accent, anchor="ra")
    d.text((m, m + f_head.size * 1.35), (fitted["detail"] or [""])[0], font=f_small, fill=ink)
    if labels.setting:
        d.text((m, m + f_head.size * 1.35 + f_small.size * 1.4), fitted["setting"][0], font=f_small, fill=accent)

    # lower third: the action, then the line being spoken, then the cue in force
    wrapped = [(fitted[name], fonts[f], c) for name, f, c in (("action", "text", ink), ("line", "line", accent),
                                                               ("cue", "small", ink)) if getattr(labels, name)]
    height = sum(len(ls) * f.size * 1.3 for ls, f, _ in wrapped)
    box = (W - m - H * 0.12, H - m - H * 0.085, W - m, H - m)  # the camera icon's, bottom right
    bottom = box[1] - m * 0.4
    if wrapped:
        top = bottom - height
        _band(im, (0, top - m * 0.4, W, bottom + m * 0.2), bg, 215)
        y = top
        for ls, f, c in wrapped:
            for text in ls:
                d.text((W / 2, y), text, font=f, fill=c, anchor="ma")
                y += f.size * 1.3

    # the camera move: an icon and its words, bottom right
    words = d.textlength(labels.camera, font=f_small)
    _band(im, (box[0] - m * 0.8 - words, box[1] - m * 0.2, W, H), bg, 160)
    _camera_icon(d, labels.moves, box, accent, max(int(H / 240), 2))
    d.text((box[0] - m * 0.4, H - m), labels.camera, font=f_small, fill=ink, anchor="rd")
    return im


def card_warnings(film: Film) -> list[Diagnostic]:
    """A warning at the line for each text the animatic's cards must cut short (the card says so with
    an ellipsis; the writer learns it here, not by watching the film)."""
    d = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    fonts = _overlay_fonts(film.height)
    out: list[Diagnostic] = []
    seen: set[tuple] = set()

    def warn(where: Where, what: str, text: str, room: tuple) -> None:
        key = (where.file, where.line, what)
        if key not in seen and _cut(d, text, *room[1:]):
            seen.add(key)
            out.append(Diagnostic(severity="warning", code="card-cut", file=where.file, span=where.span(),
                                  message=f"the {what} is too long for the animatic's card: it ends in \"…\" there",
                                  hint="shorten it; the prompt and the exports keep every word"))

    for card, frames, text in (("title", film.title_frames, film.title), ("end", film.end_frames, film.end)):
        if frames and card in film.card_where:
            warn(film.card_where[card], f"{card} card's text", text, _title_room(film))
    for shot in film.shots:
        labels = shot_labels(film, shot)
        room = _overlay_room(d, film, labels, fonts)
        warn(film.scenes[shot.scene].where, "scene heading", labels.heading, room["heading"])
        warn(shot.where, f"setting of {labels.label.lower()}", labels.setting, room["setting"])
        warn(shot.where, f"action of {labels.label.lower()}", labels.action, room["action"])
        for line in shot.lines:
            text = f"{line.speaker}: {line.text}" if line.speaker else f"({line.text})"
            warn(line.where, "line", text, _overlay_room(d, film, replace(labels, line=text), fonts)["line"])
    return out


def _title_room(film: Film) -> tuple:
    """The room of a title card's words: (text, font, width, lines), as _overlay_room."""
    return ("", font(int(film.height / 12), True), int(film.width * 0.8), 3)


def draw_title_card(film: Film, text: str, byline: str = "") -> Image.Image:
    """A title or end card: the words centred on black, at the film's size."""
    W, H = film.width, film.height
    im = Image.new("RGB", (W, H), (8, 8, 10))
    d = ImageDraw.Draw(im)
    _, f_title, width, rows = _title_room(film)
    f_by = font(int(H / 28))
    lines = _fit(d, _clip_text(text), f_title, width, rows)
    lh = f_title.size * 1.25
    top = H / 2 - lh * len(lines) / 2 - (f_by.size if byline else 0)
    for i, line in enumerate(lines):
        d.text((W / 2, top + i * lh), line, font=f_title, fill=(236, 236, 240), anchor="ma")
    if byline:
        d.text((W / 2, top + len(lines) * lh + f_by.size), _clip_text(byline), font=f_by, fill=(170, 170, 178),
               anchor="ma")
    return im
