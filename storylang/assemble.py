"""Timeline → finished film, with ffmpeg driven through ffmpeg-python.

Three passes, each cached by what it consumes:
- picture: every clip on one filter graph (xfade for transitions, concat for cuts, fades,
  optional burnt-in subtitles), encoded once with x264. Stills are moved by the camera
  here: storylang computes each frame's view with sub-pixel accuracy and streams the
  frames (raw YUV 4:2:0) into ffmpeg through named pipes, so nothing is encoded twice;
- sound: speech placed sample-exactly, music with fades and a ducking envelope under
  speech, loudness normalised to -16 LUFS, 48 kHz AAC;
- mux: picture and sound copied into one MP4 with title, provenance, one chapter per
  scene and +faststart.
Editing narration re-runs only the sound and the mux.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import ffmpeg as ffmpeg_graph
from PIL import Image, ImageOps

from storylang import atomic
from storylang.animatic import camera
from storylang.diagnostics import OneLineError
from storylang.timeline import Clip, Timeline
from storylang.toolchain import Ffmpeg

PICTURE_VERSION = "picture-6"
OVERSAMPLE = 4  # moving stills are sampled from a source this many times finer than they show
SOUND_VERSION = "sound-3"
MUX_VERSION = "mux-1"
SAMPLE_RATE = 48000
LOUDNESS = -16.0
TRUE_PEAK = -1.5

# Through black, linearly: the first half fades the outgoing shot down to black, the second
# half brings the next one up (xfade's own fadeblack spends a fifth of its time going down).
# P runs from 1 to 0; black is 16 in limited-range luma and 128 in chroma.
_BLACK = "if(eq(PLANE,0),16,128)"
FADE_THROUGH_BLACK = {"transition": "custom",
                      "expr": f"if(gt(P,0.5),{_BLACK}+(A-{_BLACK})*(2*P-1),{_BLACK}+(B-{_BLACK})*(1-2*P))"}
XFADE = {("dissolve", None): {"transition": "fade"}, ("fade", None): FADE_THROUGH_BLACK,
         ("fade", "out"): FADE_THROUGH_BLACK, ("fade", "in"): FADE_THROUGH_BLACK,
         ("wipe", "left"): {"transition": "wipeleft"}, ("wipe", "right"): {"transition": "wiperight"},
         ("wipe", "up"): {"transition": "wipeup"}, ("wipe", "down"): {"transition": "wipedown"}}

# Pillow's YCbCr is full-range BT.601; video wants limited range (16-235 luma, 16-240 chroma).
_Y_LUT = [round(16 + v * 219 / 255) for v in range(256)]
_C_LUT = [round(128 + (v - 128) * 224 / 255) for v in range(256)]


class AssemblyError(OneLineError):
    pass


@dataclass(frozen=True)
class Encoding:
    preset: str = "medium"
    crf: int = 20
    scale: Fraction = Fraction(1)
    audio_bitrate: str = "160k"
    burn_subtitles: bool = False
    workers: int = 2  # threads computing frames for each pipe

    def size(self, t: Timeline) -> tuple[int, int]:
        def even(x: Fraction) -> int:
            return max(int(x) // 2 * 2, 2)

        return even(t.width * self.scale), even(t.height * self.scale)

    def key(self) -> dict:
        return {"preset": self.preset, "crf": self.crf, "scale": str(self.scale), "burn": self.burn_subtitles}


# ---------------------------------------------------------------------------- frames


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
        raise AssemblyError(f"clip of shot {clip.shot} is not made of stills")
    static = clip.source == "still" and all(v == views[0] for v in views)
    return len(views), _with_overlays(clip, root, size, static, view_of)


def clip_frames(clip: Clip, root: Path, size: tuple[int, int], fps: Fraction,
                workers: int = 1) -> Iterator[tuple[bytes, ...]]:
    """Raw yuv420p frames (Y, Cb, Cr bytes) of a still or keyframed clip, the camera move performed on it."""
    n, frame_of = prepare_clip(clip, root, size, fps)
    yield from _ordered(frame_of, n, workers)


def segment_frames(clips: list[Clip], root: Path, size: tuple[int, int], fps: Fraction,
                   workers: int = 1) -> Iterator[tuple[bytes, ...]]:
    """The frames of clips joined by cuts; each clip is prepared while the one before it streams."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as ahead:
        upcoming = ahead.submit(prepare_clip, clips[0], root, size, fps)
        for k in range(len(clips)):
            n, frame_of = upcoming.result()
            if k + 1 < len(clips):
                upcoming = ahead.submit(prepare_clip, clips[k + 1], root, size, fps)
            yield from _ordered(frame_of, n, workers)


# ---------------------------------------------------------------------------- running ffmpeg


def _open_fifo_for_writing(path: str, proc: subprocess.Popen) -> int | None:
    """Open a named pipe once ffmpeg opens it for reading; None if ffmpeg exits first."""
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            if proc.poll() is not None:
                return None
            time.sleep(0.01)
            continue
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        try:  # a larger pipe lets frames be computed ahead of the encoder (Linux)
            fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except OSError:
            pass
        return fd


def _run(args: list[str], cwd: Path, what: str, on_progress: Callable[[int], None] | None = None,
         feeders: list[tuple[str, Callable[[], Iterator[tuple[bytes, ...]]]]] = ()) -> None:
    """Run ffmpeg; feed named pipes from threads; report `frame=` progress; raise on failure."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        errors: list[BaseException] = []

        def feed(path: str, frames: Callable[[], Iterator[tuple[bytes, ...]]]) -> None:
            try:
                fd = _open_fifo_for_writing(path, proc)
                if fd is None:
                    return
                with os.fdopen(fd, "wb", buffering=0) as fh:
                    for frame in frames():
                        for part in frame:
                            fh.write(part)
            except BrokenPipeError:
                pass
            except BaseException as e:  # reported after ffmpeg ends
                errors.append(e)

        threads = [threading.Thread(target=feed, args=fd, daemon=True) for fd in feeders]
        for th in threads:
            th.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").strip()
                if on_progress and line.startswith("frame="):
                    try:
                        on_progress(int(line[6:]))
                    except ValueError:
                        pass
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            for th in threads:
                th.join(timeout=30)
        if errors:
            raise AssemblyError(f"{what}: {errors[0]}") from errors[0]
        if proc.returncode != 0:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace").strip().splitlines()[-8:]
            raise AssemblyError(f"{what} failed (ffmpeg exit {proc.returncode}): " + " | ".join(tail))


def _secs(x: Fraction) -> float:
    return round(float(x), 6)


# ---------------------------------------------------------------------------- picture


def _segments(t: Timeline) -> list[list[Clip]]:
    """Runs of still clips joined by cuts (they share one pipe); video clips stand alone."""
    segments: list[list[Clip]] = []
    for i, clip in enumerate(t.clips):
        joined_by_cut = i > 0 and t.clips[i - 1].transition is None
        if segments and joined_by_cut and clip.source != "video" and segments[-1][-1].source != "video":
            segments[-1].append(clip)
        else:
            segments.append([clip])
    return segments


def picture(t: Timeline, root: Path, scratch: Path, target: Path, enc: Encoding, ff: Ffmpeg,
            subtitles: Path | None = None, on_progress: Callable[[int], None] | None = None) -> None:
    """Encode the film's picture (no sound) into `target`; named pipes live in `scratch`."""
    if not t.clips:
        raise AssemblyError("the film has no shots")
    size = enc.size(t)
    fps = t.fps
    rate = f"{t.fps_num}/{t.fps_den}"
    feeders = []
    fifo_dir = Path(tempfile.mkdtemp(prefix="pipes-", dir=scratch))
    try:
        segments = _segments(t)
        streams = []
        seg_start, first = {}, 0
        for seg in segments:
            seg_start[id(seg)] = first
            first += len(seg)
        for n, seg in enumerate(segments):
            frames = sum(c.frames for c in seg)
            if seg[0].source == "video":
                c = seg[0]
                src = ffmpeg_graph.input(str((root / c.files[0]).resolve()), ss=_secs(c.source_in / fps))
                s = (src.video.filter("fps", fps=rate)
                     .filter("scale", size[0], size[1], force_original_aspect_ratio="increase",
                             out_color_matrix="bt601", out_range="tv")
                     .filter("crop", size[0], size[1])
                     .filter("format", "yuv420p")
                     .filter("tpad", stop_mode="clone", stop=frames)
                     .filter("trim", end_frame=frames)
                     .filter("setpts", "PTS-STARTPTS"))
            else:
                fifo = str(fifo_dir / f"segment{n}.yuv")
                os.mkfifo(fifo)
                s = ffmpeg_graph.input(fifo, f="rawvideo", pix_fmt="yuv420p", s=f"{size[0]}x{size[1]}",
                                       framerate=rate).video

                def frames_of(seg=seg):
                    return segment_frames(seg, root, size, fps, workers=enc.workers)

                feeders.append((fifo, frames_of))
            streams.append((s.filter("setsar", 1).filter("settb", "AVTB"), frames, seg))
        out, length = streams[0][0], streams[0][1]
        for s, frames, seg in streams[1:]:
            tr = t.clips[seg_start[id(seg)] - 1].transition
            if tr is not None and tr.kind != "cut" and tr.frames > 0:
                kind = XFADE.get((tr.kind, tr.direction), XFADE.get((tr.kind, None), XFADE[("dissolve", None)]))
                out = ffmpeg_graph.filter([out, s], "xfade", **kind, duration=_secs(tr.frames / fps),
                                          offset=_secs((length - tr.frames) / fps))
                length += frames - tr.frames
            else:
                out = ffmpeg_graph.concat(out, s, v=1, a=0)
                length += frames
        if length != t.frames:
            raise AssemblyError(f"internal: the picture would be {length} frames, the timeline says {t.frames}")
        out = out.filter("setparams", colorspace="smpte170m", color_primaries="smpte170m", color_trc="smpte170m",
                         range="tv")
        if t.fade_in:
            out = out.filter("fade", type="in", start_frame=0, nb_frames=t.fade_in)
        if t.fade_out:
            out = out.filter("fade", type="out", start_frame=t.frames - t.fade_out, nb_frames=t.fade_out)
        if subtitles is not None:
            # a digest-named file in the working directory: no writer's text in the filter graph
            out = out.filter("subtitles", subtitles.name)
        with atomic.atomic_path(target, suffix=".mp4") as tmp:
            stream = ffmpeg_graph.output(
                out, str(tmp), f="mp4", vcodec="libx264", preset=enc.preset, crf=enc.crf, pix_fmt="yuv420p",
                colorspace="smpte170m", color_primaries="smpte170m", color_trc="smpte170m", color_range="tv",
                an=None, **{"x264-params": "log-level=error"},
            ).global_args("-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1")
            args = stream.compile(cmd=ff.path, overwrite_output=True)
            _run(args, cwd=subtitles.parent if subtitles else scratch, what="encoding the picture",
                 on_progress=on_progress, feeders=feeders)
    finally:
        for p in fifo_dir.iterdir():
            p.unlink()
        fifo_dir.rmdir()


# ---------------------------------------------------------------------------- sound


def duck_expression(t: Timeline, duck_db: float, ramp: float = 0.15) -> str | None:
    """A volume expression (of t, in seconds) that lowers music by duck_db while anyone speaks."""
    if not t.speech or duck_db >= 0:
        return None
    gain = 10 ** (duck_db / 20)
    terms = []
    for s in t.speech:
        a, b = _secs(t.seconds(s.start)), _secs(t.seconds(s.start + s.frames))
        terms.append(f"clip(min((t-{a}+{ramp})/{ramp},({b}+{ramp}-t)/{ramp}),0,1)")
    return f"1-{round(1 - gain, 6)}*min(1,{'+'.join(terms)})"


def sound(t: Timeline, root: Path, target: Path, enc: Encoding, ff: Ffmpeg) -> None:
    """Mix speech and music into the film's sound track (AAC, 48 kHz stereo) at `target`."""
    total_samples = round(t.seconds(t.frames) * SAMPLE_RATE)
    voices = []
    for s in t.speech:
        a = (ffmpeg_graph.input(str((root / s.file).resolve())).audio
             .filter("aresample", SAMPLE_RATE)
             .filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
             .filter("adelay", delays=f"{round(t.seconds(s.start) * SAMPLE_RATE)}S", all=1))
        voices.append(a)
    buses = []
    if voices:
        buses.append(voices[0] if len(voices) == 1 else
                     ffmpeg_graph.filter(voices, "amix", inputs=len(voices), normalize=0, dropout_transition=0))
    for m in t.music:
        length = t.seconds(m.end - m.start)
        a = (ffmpeg_graph.input(str((root / m.file).resolve())).audio
             .filter("aresample", SAMPLE_RATE)
             .filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
             .filter("atrim", end=_secs(length))
             .filter("asetpts", "PTS-STARTPTS"))
        if m.fade_in:
            a = a.filter("afade", type="in", start_time=0, duration=_secs(t.seconds(m.fade_in)))
        if m.fade_out:
            fo = t.seconds(min(m.fade_out, m.end - m.start))
            a = a.filter("afade", type="out", start_time=_secs(length - fo), duration=_secs(fo))
        a = a.filter("volume", volume=f"{m.volume_db}dB")
        a = a.filter("adelay", delays=f"{round(t.seconds(m.start) * SAMPLE_RATE)}S", all=1)
        expr = duck_expression(t, m.duck_db)
        if expr:
            a = a.filter("volume", volume=expr, eval="frame")
        buses.append(a)
    if buses:
        mixed = buses[0] if len(buses) == 1 else ffmpeg_graph.filter(buses, "amix", inputs=len(buses), normalize=0,
                                                                       dropout_transition=0)
        # Two passes: measure integrated loudness (EBU R128) and true peak, then apply one
        # linear gain to reach -16 LUFS, with a limiter only if that gain would clip.
        measured = _measure_loudness(mixed, ff, root)
        mix = mixed
        if measured:
            loud, peak = measured
            gain = round(LOUDNESS - loud, 2)
            mix = mix.filter("volume", volume=f"{gain}dB")
            if peak + gain > TRUE_PEAK:
                mix = mix.filter("alimiter", limit=round(10 ** (TRUE_PEAK / 20), 4), level="disabled", latency=1)
        mix = mix.filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
    else:
        mix = ffmpeg_graph.input(f"anullsrc=r={SAMPLE_RATE}:cl=stereo", f="lavfi").audio
    mix = mix.filter("apad", whole_len=total_samples).filter("atrim", end_sample=total_samples)
    if t.fade_in:
        mix = mix.filter("afade", type="in", start_time=0, duration=_secs(t.seconds(t.fade_in)))
    if t.fade_out:
        mix = mix.filter("afade", type="out", start_time=_secs(t.seconds(t.frames - t.fade_out)),
                         duration=_secs(t.seconds(t.fade_out)))
    with atomic.atomic_path(target, suffix=".m4a") as tmp:
        stream = ffmpeg_graph.output(mix, str(tmp), f="mp4", acodec="aac", audio_bitrate=enc.audio_bitrate,
                                     ar=SAMPLE_RATE, vn=None).global_args("-hide_banner", "-nostats", "-loglevel", "error")
        _run(stream.compile(cmd=ff.path, overwrite_output=True), cwd=root, what="mixing the sound")


def _measure_loudness(stream, ff: Ffmpeg, cwd: Path) -> tuple[float, float] | None:
    """First pass: (integrated loudness in LUFS, true peak in dBFS), or None for silence."""
    import re

    args = (ffmpeg_graph.output(stream.filter("ebur128", peak="true", framelog="quiet"), "-", f="null")
            .global_args("-hide_banner", "-nostats").compile(cmd=ff.path))
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    loud = re.findall(r"I:\s+(-?[\d.]+) LUFS", proc.stderr)
    peak = re.findall(r"Peak:\s+(-?[\d.]+|-inf) dBFS", proc.stderr)
    if proc.returncode != 0 or not loud or not peak or peak[-1] == "-inf" or float(loud[-1]) < -69:
        return None
    return float(loud[-1]), float(peak[-1])


# ---------------------------------------------------------------------------- mux


def _meta_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch in "=;#\\\n":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def metadata(t: Timeline, provenance: str) -> str:
    """An ffmetadata file: title, author, provenance and one chapter per scene (times in frames)."""
    lines = [";FFMETADATA1", f"title={_meta_escape(t.title)}"]
    if t.author:
        lines.append(f"artist={_meta_escape(t.author)}")
    lines.append(f"comment={_meta_escape(provenance)}")
    for c in t.chapters:
        lines += ["[CHAPTER]", f"TIMEBASE={t.fps_den}/{t.fps_num}", f"START={c.start}", f"END={c.end}",
                  f"title={_meta_escape(c.title)}"]
    return "\n".join(lines) + "\n"


def mux(picture_file: Path, sound_file: Path, meta: str, target: Path, ff: Ffmpeg, scratch: Path) -> None:
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        meta_file = Path(d) / "metadata.txt"
        meta_file.write_text(meta, encoding="utf-8")
        with atomic.atomic_path(target, suffix=".mp4") as tmp:
            args = [ff.path, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
                    "-i", str(picture_file), "-i", str(sound_file), "-f", "ffmetadata", "-i", str(meta_file),
                    "-map", "0:v:0", "-map", "1:a:0", "-map_metadata", "2", "-map_chapters", "2",
                    "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(tmp)]
            _run(args, cwd=Path(d), what="writing the film")
