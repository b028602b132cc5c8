"""Storyboard frames: one card per shot, drawn with Pillow at the film's format.

A card shows the scene heading, the shot number, framing and cast, simple figures sized by
the framing, the action, the prompt schedule and the camera move as an arrow. Each scene
gets its own deterministic tint so cuts between scenes are visible at a glance.
"""

from __future__ import annotations

import colorsys
import hashlib
import math
from functools import lru_cache

from PIL import Image, ImageDraw, ImageFont

from storylang.film import Film, Scene, Shot

STAGE_VERSION = "card-3"
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


def _wrap(draw: ImageDraw.ImageDraw, text: str, fnt, width: int) -> list[str]:
    lines: list[str] = []
    for para in text.split("\n"):
        words = para.split()
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


def _arrow(draw, start, end, color, width):
    draw.line([start, end], fill=color, width=width)
    ang = math.atan2(end[1] - start[1], end[0] - start[0])
    size = width * 3.5
    for side in (-0.5, 0.5):
        a = ang + math.pi + side
        draw.line([end, (end[0] + size * math.cos(a), end[1] + size * math.sin(a))], fill=color, width=width)


def _camera_icon(draw, shot: Shot, box, color, width):
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    rw, rh = (x1 - x0) / 2, (y1 - y0) / 2
    draw.rectangle(box, outline=color, width=max(width // 2, 1))
    for m in shot.camera or ():
        if m.move in ("push", "zoom") and m.direction == "in":
            for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
                _arrow(draw, (cx + sx * rw * 0.9, cy + sy * rh * 0.9), (cx + sx * rw * 0.4, cy + sy * rh * 0.4), color, width)
        elif m.move in ("pull", "zoom"):
            for sx, sy in ((-1, -1), (1, -1), (-1, 1), (1, 1)):
                _arrow(draw, (cx + sx * rw * 0.3, cy + sy * rh * 0.3), (cx + sx * rw * 0.85, cy + sy * rh * 0.85), color, width)
        elif m.move in ("pan", "truck"):
            d = -1 if m.direction == "left" else 1
            _arrow(draw, (cx - d * rw * 0.7, cy), (cx + d * rw * 0.7, cy), color, width)
        elif m.move in ("tilt", "pedestal", "crane"):
            d = -1 if m.direction == "up" else 1
            _arrow(draw, (cx, cy - d * rh * 0.7), (cx, cy + d * rh * 0.7), color, width)
        elif m.move in ("orbit", "roll"):
            r = min(rw, rh) * 0.6
            start, end = (200, 340) if m.direction == "right" else (340, 200)
            draw.arc([cx - r, cy - r, cx + r, cy + r], min(start, end), max(start, end), fill=color, width=width)
            a = math.radians(end)
            tip = (cx + r * math.cos(a), cy + r * math.sin(a))
            back = math.radians(end - 25 if m.direction == "right" else end + 25)
            _arrow(draw, (cx + r * math.cos(back), cy + r * math.sin(back)), tip, color, width)
        elif m.move == "shake":
            pts = [(x0 + rw * 0.2 + i * rw * 0.2, cy + (rh * 0.4 if i % 2 else -rh * 0.4)) for i in range(9)]
            draw.line(pts, fill=color, width=width)
    if not shot.camera or all(m.move == "static" for m in shot.camera):
        r = min(rw, rh) * 0.35
        draw.line([(cx - r, cy), (cx + r, cy)], fill=color, width=width)
        draw.line([(cx, cy - r), (cx, cy + r)], fill=color, width=width)


def _figure(draw, x, top, height, fill, outline, name, fnt, ink):
    """A simple storyboard figure, head and shoulders, `height` tall from `top`."""
    head = height * 0.13
    width = max(int(height / 110), 3)
    body_top = top + head * 2.2
    draw.polygon([(x - head * 1.7, body_top + head * 0.5), (x + head * 1.7, body_top + head * 0.5),
                  (x + head * 1.2, top + height), (x - head * 1.2, top + height)], fill=fill, outline=outline, width=width)
    draw.rounded_rectangle([x - head * 1.7, body_top, x + head * 1.7, body_top + head * 1.4], radius=head * 0.6,
                           fill=fill, outline=outline, width=width)
    draw.ellipse([x - head * 0.8, top, x + head * 0.8, top + head * 2], fill=fill, outline=outline, width=width)
    draw.text((x, body_top + head * 0.5), name, font=fnt, fill=ink, anchor="mt")


def draw_card(film: Film, shot: Shot) -> Image.Image:
    """The storyboard card of one shot, at SUPERSAMPLE times the film's size."""
    W, H = int(film.width * SUPERSAMPLE), int(film.height * SUPERSAMPLE)
    scene = film.scenes[shot.scene]
    bg, ink, accent = scene_palette(scene)
    im = Image.new("RGB", (W, H), bg)
    d = ImageDraw.Draw(im)
    m = int(H * 0.075)  # title-safe: camera moves keep the words in frame
    line = max(int(H / 240), 2)
    d.rectangle([m // 2, m // 2, W - m // 2, H - m // 2], outline=accent, width=line)

    # header: scene heading, shot number, framing and cast
    f_head, f_num, f_small = font(int(H / 24), True), font(int(H / 14), True), font(int(H / 34))
    d.text((m, m), scene.heading, font=f_head, fill=ink)
    label = f"SHOT {shot.number}" if shot.number else (shot.name.upper() if shot.name else f"SHOT {shot.id}")
    d.text((W - m, m * 0.8), label, font=f_num, fill=accent, anchor="ra")
    framing = shot.framing + (f", {shot.angle}" if shot.angle else "")
    cast = f"  ·  on {', '.join(shot.cast)}" if shot.cast else ""
    name = f"“{shot.name}”  ·  " if shot.name and shot.number else ""
    d.text((m, m + f_head.size * 1.35), f"{name}{framing.upper()}{cast}", font=f_small, fill=ink)
    if shot.setting:
        d.text((m, m + f_head.size * 1.35 + f_small.size * 1.4), shot.setting, font=f_small, fill=accent)

    # figures, sized by the framing
    scale = FIGURE_SCALE.get(shot.framing, 1.0)
    if shot.cast and scale > 0:
        n = len(shot.cast)
        height = H * 0.62 * scale
        top = H * 0.80 - height if scale < 1 else H * 0.22
        fill = tuple(int(b * 0.6 + a * 0.4) for b, a in zip(bg, accent))
        f_name = font(max(int(H / 30 * min(max(scale, 0.6), 1.6)), 12), True)
        for i, name in enumerate(shot.cast):
            x = W * (i + 1) / (n + 1)
            _figure(d, x, top, height, fill, accent, name, f_name, ink)

    # action, centred and wrapped, on a band in the lower third
    f_action = font(int(H / 20))
    text = shot.action or (shot.lines[0].text if shot.lines else "")
    lines = _wrap(d, text, f_action, int(W * 0.72))[:4]
    if lines:
        lh = f_action.size * 1.3
        top = H * 0.70 - lh * len(lines) / 2
        band = Image.new("RGBA", (W, int(lh * len(lines) + lh * 0.6)), (*bg, 215))
        im.paste(band, (0, int(top - lh * 0.3)), band)
        for i, t in enumerate(lines):
            d.text((W / 2, top + i * lh), t, font=f_action, fill=ink, anchor="ma")

    # the camera move as an arrow, with its words
    box = (W - m - H * 0.2, H - m - H * 0.14, W - m, H - m)
    _camera_icon(d, shot, box, accent, max(int(H / 160), 3))
    words = ", ".join(c.move if c.move == "static" else " ".join(x for x in (c.move, c.direction or "", c.speed) if x)
                      for c in shot.camera) or "static"
    d.text((box[0] - m * 0.4, H - m), words.upper(), font=f_small, fill=ink, anchor="rd")

    # the prompt schedule
    for i, cue in enumerate(shot.schedule[:3]):
        secs = cue.frame / float(film.fps)
        d.text((m, H - m - (len(shot.schedule[:3]) - i) * f_small.size * 1.4), f"at {secs:g}s: {cue.text}",
               font=f_small, fill=ink)
    return im
