"""Camera moves as functions of time, performed on a still with sub-pixel accuracy.

A view is (ox, oy, zoom, angle): the centre's offset from the image centre as fractions
of the image's width and height, a magnification, and a rotation in degrees. The shot's
base scale is the least that keeps every frame's view inside the image, so moves never
reveal an edge; the assembly samples each view at fractional coordinates (see
stills.Planes), so slow moves glide instead of stepping pixel by pixel.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from storylang.film import CameraMove

STAGE_VERSION = "camera-1"


def ease(kind: str, u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    if kind == "linear":
        return u
    if kind == "ease-in":
        return u * u * u
    if kind == "ease-out":
        return 1 - (1 - u) ** 3
    return 4 * u * u * u if u < 0.5 else 1 - (-2 * u + 2) ** 3 / 2  # ease-in-out


@dataclass(frozen=True)
class View:
    ox: float = 0.0
    oy: float = 0.0
    zoom: float = 1.0
    angle: float = 0.0


def _noise(seed: str, t: float, axis: int) -> float:
    """Smooth deterministic wobble in [-1, 1]: a sum of sines with phases from the seed."""
    h = hashlib.sha256(f"{seed}:{axis}".encode()).digest()
    total = 0.0
    for i, (freq, weight) in enumerate(((0.9, 0.6), (2.3, 0.3), (4.1, 0.1))):
        phase = h[i] / 255 * 2 * math.pi
        total += weight * math.sin(2 * math.pi * freq * t + phase)
    return total


def view_at(moves: tuple[CameraMove, ...], frame: int, frames: int, fps: float, seed: str = "") -> View:
    u_raw = frame / (frames - 1) if frames > 1 else 0.0
    ox = oy = angle = 0.0
    zoom = 1.0
    for m in moves:
        e = ease(m.easing, u_raw)
        a = m.amount / 100.0
        if m.move in ("push", "zoom") and m.direction == "in":
            zoom *= 1 + a * e
        elif m.move == "pull" or (m.move == "zoom" and m.direction == "out"):
            zoom *= 1 + a * (1 - e)
        elif m.move in ("pan", "truck"):
            sign = -1 if m.direction == "left" else 1
            ox += sign * a * (e - 0.5)
        elif m.move in ("tilt", "pedestal", "crane"):
            sign = -1 if m.direction == "up" else 1
            oy += sign * a * (e - 0.5)
            if m.move == "crane":
                zoom *= 1 + (a / 2) * ((1 - e) if m.direction == "up" else e)
        elif m.move == "orbit":
            sign = -1 if m.direction == "left" else 1
            deg = m.amount
            angle += sign * deg * (e - 0.5)
            ox += sign * (deg / 100.0) * (e - 0.5)
        elif m.move == "roll":
            sign = 1 if m.direction == "left" else -1
            angle += sign * m.amount * e
        elif m.move == "shake":
            t = frame / fps
            amp = a / 2
            ox += amp * _noise(seed, t, 0)
            oy += amp * _noise(seed, t, 1)
            angle += amp * 40 * _noise(seed, t, 2)
    return View(ox=ox, oy=oy, zoom=zoom, angle=angle)


def cover_scale(v: View, aspect: float) -> float:
    """Least magnification at which the rotated, offset view stays inside the image."""
    c, s = abs(math.cos(math.radians(v.angle))), abs(math.sin(math.radians(v.angle)))
    # aspect = width / height; the view has the image's aspect ratio.
    need_x = (c + s / aspect) / max(1 - 2 * abs(v.ox), 1e-6)
    need_y = (s * aspect + c) / max(1 - 2 * abs(v.oy), 1e-6)
    return max(need_x, need_y, 1.0)


def shot_views(moves: tuple[CameraMove, ...], frames: int, fps: float, aspect: float, seed: str = "") -> list[View]:
    """Every frame's view, with the base scale that keeps the whole move inside the image."""
    views = [view_at(moves, i, frames, fps, seed) for i in range(frames)]
    base = max((cover_scale(v, aspect) / v.zoom for v in views), default=1.0)
    base = max(base, 1.0)
    return [View(ox=v.ox, oy=v.oy, zoom=v.zoom * base, angle=v.angle) for v in views]


def affine(v: View, src: tuple[int, int], out: tuple[int, int]) -> tuple[float, ...]:
    """Pillow AFFINE coefficients mapping output pixels to source pixels for view `v`."""
    sw, sh = src
    w, h = out
    k = (sw / v.zoom) / w  # source pixels per output pixel
    r = math.radians(v.angle)
    c, s = math.cos(r), math.sin(r)
    cx, cy = sw * (0.5 + v.ox), sh * (0.5 + v.oy)
    a, b = k * c, -k * s
    d, e = k * s, k * c
    return (a, b, cx - a * w / 2 - b * h / 2, d, e, cy - d * w / 2 - e * h / 2)
