"""Images moved by the camera: the frames of still and keyframed clips, for the assembler.

Every renderer whose output for a shot is an image (an animatic card, a ComfyUI still, two
keyframes) ends here: storylang computes each frame's view with sub-pixel accuracy and hands
raw YUV 4:2:0 frames to the assembler, which streams them into ffmpeg. Overlays (words that
stay in place while the picture moves) are laid on top here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from fractions import Fraction
from pathlib import Path

from PIL import Image, ImageOps

from storylang.diagnostics import OneLineError
from storylang.render import camera
from storylang.timeline import Clip
from storylang.probe import limit_pillow

limit_pillow()  # pictures from scripts and servers: a bomb is refused, never decoded

STAGE_VERSION = "stills-1"  # part of the picture's cache key: bump when a frame would change
OVERSAMPLE = 4  # moving stills are sampled from a source this many times finer than they show

# Pillow's YCbCr is full-range BT.601; video wants limited range (16-235 luma, 16-240 chroma).
_Y_LUT = [round(16 + v * 219 / 255) for v in range(256)]
_C_LUT = [round(128 + (v - 128) * 224 / 255) for v in range(256)]



class Planes:
    """A still as limited-range Y, Cb, Cr planes (chroma at half size), cropped to the film's aspect."""

    def __init__(self, path: Path, aspect: Fraction):
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
        w, h = im.size
        if Fraction(w, h) > aspect:  # too wide: crop the sides
            nw = round(h * aspect)
            im = im.crop(((w - nw) // 2, 0, (w - nw) // 2 + nw, h))
        elif Fraction(w, h) < aspect:
            nh = round(w / aspect)
            im = im.crop((0, (h - nh) // 2, w, (h - nh) // 2 + nh))
        y, cb, cr = im.convert("YCbCr").split()
        half = (max(im.width // 2, 1), max(im.height // 2, 1))
        self.y = y.point(_Y_LUT)
        self.cb = cb.resize(half, Image.Resampling.BOX).point(_C_LUT)
        self.cr = cr.resize(half, Image.Resampling.BOX).point(_C_LUT)

    resample = Image.Resampling.BILINEAR

    def _resized(self, width: int, method) -> "Planes":
        height = round(width * self.y.height / self.y.width)
        out = object.__new__(Planes)
        out.y = self.y.resize((width, height), method)
        half = (max(width // 2, 1), max(height // 2, 1))
        out.cb = self.cb.resize(half, method)
        out.cr = self.cr.resize(half, method)
        return out

    def fitted(self, size: tuple[int, int], views: list[camera.View]) -> "Planes":
        """These planes prepared for a moving clip: band-limited, then enlarged for cheap sampling.

        First reduced (Lanczos) to the detail the clip's closest view needs, so nothing finer
        than the frame can show survives to alias; then enlarged OVERSAMPLE times, so that
        nearest-pixel sampling lands within 1/(2*OVERSAMPLE) of a source pixel: motion stays
        smooth (the trick that makes zoompan smooth) at a tenth of the cost of filtering every frame.
        """
        need = max([1.0, *(v.zoom for v in views)])
        w = min(self.y.width, max(size[0], round(size[0] * need)))
        base = self if w >= self.y.width else self._resized(w, Image.Resampling.LANCZOS)
        out = base._resized(base.y.width * OVERSAMPLE, Image.Resampling.BICUBIC)
        out.resample = Image.Resampling.NEAREST
        return out

    def view(self, v: camera.View, size: tuple[int, int]) -> tuple[Image.Image, Image.Image, Image.Image]:
        w, h = size
        half = (w // 2, h // 2)
        out = []
        for plane, target in ((self.y, size), (self.cb, half), (self.cr, half)):
            if v.angle == 0:
                # No rotation: a resample of a fractional box (separable, so about twice as fast).
                sw, sh = plane.size
                bw, bh = sw / v.zoom, sh / v.zoom
                cx, cy = sw * (0.5 + v.ox), sh * (0.5 + v.oy)
                # the camera keeps views inside the image; clamp away float dust at the edges
                box = (max(cx - bw / 2, 0.0), max(cy - bh / 2, 0.0), min(cx + bw / 2, sw), min(cy + bh / 2, sh))
                out.append(plane.resize(target, self.resample, box=box))
            else:
                coeffs = camera.affine(v, plane.size, target)
                out.append(plane.transform(target, Image.Transform.AFFINE, coeffs, resample=self.resample))
        return out[0], out[1], out[2]


class OverlayPlanes:
    """A transparent overlay as limited-range Y, Cb, Cr planes with their alpha, at the output size."""

    def __init__(self, path: Path, size: tuple[int, int]):
        with Image.open(path) as im:
            im = im.convert("RGBA")
        if im.size != size:
            im = im.resize(size, Image.Resampling.LANCZOS)
        y, cb, cr = im.convert("RGB").convert("YCbCr").split()
        half = (size[0] // 2, size[1] // 2)
        self.alpha = im.getchannel("A")
        self.alpha_half = self.alpha.resize(half, Image.Resampling.BOX)
        self.y = y.point(_Y_LUT)
        self.cb = cb.resize(half, Image.Resampling.BOX).point(_C_LUT)
        self.cr = cr.resize(half, Image.Resampling.BOX).point(_C_LUT)

    def over(self, planes) -> tuple[Image.Image, Image.Image, Image.Image]:
        y, cb, cr = planes
        return (Image.composite(self.y, y, self.alpha), Image.composite(self.cb, cb, self.alpha_half),
                Image.composite(self.cr, cr, self.alpha_half))


def _with_overlays(clip: Clip, root: Path, size: tuple[int, int], static: bool, view_of: Callable) -> Callable:
    """frame_of(i) for a clip: its picture at frame i, with the overlay in force laid on top.

    A `static` picture (a still the camera does not move) is composed once per overlay span.
    """
    spans = [(o.start, o.end, OverlayPlanes(root / o.file, size)) for o in clip.overlays]
    memo: dict[int, tuple[bytes, ...]] = {}

    def overlay_at(i: int):
        return next((k for k, (a, b, _) in enumerate(spans) if a <= i < b), None)

    def frame_of(i: int) -> tuple[bytes, ...]:
        k = overlay_at(i)
        if static and k in memo:
            return memo[k]
        planes = view_of(i)
        frame = _bytes(spans[k][2].over(planes) if k is not None else planes)
        if static:
            memo[k] = frame
        return frame

    return frame_of


def _bytes(planes) -> tuple[bytes, ...]:
    """A frame as its three planes' bytes, written one after the other (no joining copy)."""
    return tuple(p.tobytes() for p in planes)


def _ordered(fn, n: int, workers: int, window: int = 6) -> Iterator:
    """fn(0..n-1) computed `workers` at a time (Pillow releases the GIL), yielded in order."""
    if workers <= 1 or n <= 1:
        for i in range(n):
            yield fn(i)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque = deque()
        nxt = 0
        while nxt < n or pending:
            while nxt < n and len(pending) < window:
                pending.append(pool.submit(fn, nxt))
                nxt += 1
            yield pending.popleft().result()


def prepare_clip(clip: Clip, root: Path, size: tuple[int, int], fps: Fraction) -> tuple[int, Callable]:
    """Everything a still or keyframed clip needs before its first frame; returns (frames, frame_of)."""
    aspect = Fraction(size[0], size[1])
    views = camera.shot_views(clip.camera, clip.frames, float(fps), float(aspect), seed=str(clip.seed))
    if clip.source == "still":
        planes = Planes(root / clip.files[0], aspect)
        if not all(v == views[0] for v in views):
            planes = planes.fitted(size, views)

        def view_of(i: int):
            return planes.view(views[i], size)
    elif clip.source == "keyframes":
        a = Planes(root / clip.files[0], aspect).fitted(size, views)
        b = Planes(root / clip.files[1], aspect).fitted(size, views)
        n = max(clip.frames - 1, 1)

        def view_of(i: int):
            pa, pb = a.view(views[i], size), b.view(views[i], size)
            return tuple(Image.blend(x, y, i / n) for x, y in zip(pa, pb))
    else:
        raise OneLineError(f"clip of shot {clip.shot} is not made of stills")
    static = clip.source == "still" and all(v == views[0] for v in views)
    return len(views), _with_overlays(clip, root, size, static, view_of)


def clip_frames(clip: Clip, root: Path, size: tuple[int, int], fps: Fraction,
                workers: int = 1) -> Iterator[tuple[bytes, ...]]:
    """Raw yuv420p frames (Y, Cb, Cr bytes) of a still or keyframed clip, the camera move performed on it."""
    n, frame_of = prepare_clip(clip, root, size, fps)
    yield from _ordered(frame_of, n, workers)


def segment_frames(pieces: list[tuple[Clip, int, int]], root: Path, size: tuple[int, int], fps: Fraction,
                   workers: int = 1, prepare: Callable | None = None) -> Iterator[tuple[bytes, ...]]:
    """The frames of clips joined by cuts, each clip's frames start..start+count-1 (a piece of it);
    each clip is prepared while the one before it streams."""
    from concurrent.futures import ThreadPoolExecutor

    prepare = prepare or (lambda clip, size: prepare_clip(clip, root, size, fps))
    with ThreadPoolExecutor(max_workers=1) as ahead:
        upcoming = ahead.submit(prepare, pieces[0][0], size)
        for k, (_clip, start, count) in enumerate(pieces):
            _n, frame_of = upcoming.result()
            if k + 1 < len(pieces):
                upcoming = ahead.submit(prepare, pieces[k + 1][0], size)
            yield from _ordered(lambda i, frame_of=frame_of, start=start: frame_of(start + i), count, workers)


class _Prepared:
    """Clips prepared for the assembler, the last few kept: a clip's body and the transitions on
    either side are encoded as separate segments, often at once, and prepare it only once."""

    def __init__(self, root: Path, fps: Fraction, keep: int = 4):
        import threading
        from collections import OrderedDict

        self.root, self.fps, self.keep = root, fps, keep
        self.lock = threading.Lock()
        self.entries: OrderedDict = OrderedDict()

    def __call__(self, clip: Clip, size: tuple[int, int]) -> tuple[int, Callable]:
        from concurrent.futures import Future

        key = (clip.model_dump_json(), size)
        with self.lock:
            found = self.entries.get(key)
            mine = found is None
            if mine:
                found = self.entries[key] = Future()
                while len(self.entries) > self.keep:
                    self.entries.popitem(last=False)
            self.entries.move_to_end(key)
        if mine:
            try:
                found.set_result(prepare_clip(clip, self.root, size, self.fps))
            except BaseException as e:
                found.set_exception(e)
                with self.lock:
                    self.entries.pop(key, None)
        return found.result()


def frame_source(root: Path, fps: Fraction, workers: int) -> Callable:
    """What the assembler asks for still clips' frames: pieces of clips joined by cuts, at a size."""
    prepared = _Prepared(root, fps)
    return lambda pieces, size: segment_frames(pieces, root, size, fps, workers=workers, prepare=prepared)
