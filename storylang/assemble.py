"""Timeline → finished picture and film, with ffmpeg driven through ffmpeg-python.

- picture: in segments (see "picture in segments" below), or for `--release`, burnt-in
  subtitles and fades across transitions, every clip on one filter graph (xfade for
  transitions, concat for cuts) encoded once with x264. Video clips are read from their files;
  the frames of still clips come from the caller (the renderer seam's `render.stills`), as raw
  YUV 4:2:0 streamed into ffmpeg through named pipes, so nothing is encoded twice;
- the sound is mix.py's;
- mux: picture and sound copied into one MP4 with title, provenance, one chapter per scene and
  +faststart.
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

from storylang import atomic
from storylang.diagnostics import OneLineError, inert
from storylang.timeline import Clip, Timeline
from storylang.toolchain import Ffmpeg

PICTURE_VERSION = "picture-6"
MUX_VERSION = "mux-2"

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



class AssemblyError(OneLineError):
    pass


# The frames of pieces of still clips joined by cuts, at an output size: (Y, Cb, Cr) bytes per frame.
# A piece is (clip, first frame, frame count).
FrameSource = Callable[[list[tuple[Clip, int, int]], tuple[int, int]], Iterator[tuple[bytes, ...]]]


# burned subtitles sit above the card's bottom band (the camera move's words, 15% of the height):
# libass counts margins in the subtitle's own 288-line space
BURN_STYLE = "MarginV=46"


@dataclass(frozen=True)
class Encoding:
    preset: str = "medium"
    crf: int = 20
    scale: Fraction = Fraction(1)
    audio_bitrate: str = "160k"
    burn_subtitles: bool = False

    def size(self, t: Timeline) -> tuple[int, int]:
        def even(x: Fraction) -> int:
            return max(int(x) // 2 * 2, 2)

        return even(t.width * self.scale), even(t.height * self.scale)

    def key(self) -> dict:
        key = {"preset": self.preset, "crf": self.crf, "scale": str(self.scale), "burn": self.burn_subtitles}
        if self.burn_subtitles:
            key["burn_style"] = BURN_STYLE
        return key


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


def run_ffmpeg(args: list[str], cwd: Path, what: str, on_progress: Callable[[int], None] | None = None,
         feeders: list[tuple[str, Callable[[], Iterator[tuple[bytes, ...]]]]] = (),
         stop: Callable[[], None] | None = None) -> None:
    """Run ffmpeg; feed named pipes from threads; report `frame=` progress; raise on failure.

    `stop` is called on every progress line (about twice a second with `-progress pipe:1`); what it
    raises (a newer edit superseded the build) kills ffmpeg, and the partial output is removed."""
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
                if stop is not None:
                    stop()
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


def _seconds(x: Fraction) -> float:
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


def _video_stream(t: Timeline, clip: Clip, first: int, count: int, root: Path, size: tuple[int, int]):
    """`count` frames of a video clip from its frame `first`, conformed to the film: its rate, its size
    (covered, then cropped), exactly `count` frames (the last one held if the clip is short)."""
    src = ffmpeg_graph.input(str((root / clip.files[0]).resolve()), ss=_seconds((clip.source_in + first) / t.fps))
    return (src.video.filter("fps", fps=f"{t.fps_num}/{t.fps_den}")
            .filter("scale", size[0], size[1], force_original_aspect_ratio="increase",
                    out_color_matrix="bt601", out_range="tv")
            .filter("crop", size[0], size[1])
            .filter("format", "yuv420p")
            .filter("tpad", stop_mode="clone", stop=count)
            .filter("trim", end_frame=count)
            .filter("setpts", "PTS-STARTPTS"))


def _still_stream(t: Timeline, pieces: list, size: tuple[int, int], fifo: Path, feeders: list,
                  frames_of: FrameSource):
    """Raw frames of still pieces, computed by `frames_of` and fed through the named pipe `fifo`."""
    os.mkfifo(fifo)
    feeders.append((str(fifo), lambda: frames_of(pieces, size)))
    return ffmpeg_graph.input(str(fifo), f="rawvideo", pix_fmt="yuv420p", s=f"{size[0]}x{size[1]}",
                              framerate=f"{t.fps_num}/{t.fps_den}").video


def _xfade(tr) -> dict:
    return XFADE.get((tr.kind, tr.direction), XFADE.get((tr.kind, None), XFADE[("dissolve", None)]))


def _finish(out, frames: int, fade_in: int, fade_out: int):
    """Colour tags, and fades from and to black at the ends."""
    out = out.filter("setparams", colorspace="smpte170m", color_primaries="smpte170m", color_trc="smpte170m",
                     range="tv")
    if fade_in:
        out = out.filter("fade", type="in", start_frame=0, nb_frames=fade_in)
    if fade_out:
        out = out.filter("fade", type="out", start_frame=frames - fade_out, nb_frames=fade_out)
    return out


def picture(t: Timeline, root: Path, scratch: Path, target: Path, enc: Encoding, ff: Ffmpeg, frames_of: FrameSource,
            subtitles: Path | None = None, on_progress: Callable[[int], None] | None = None) -> None:
    """Encode the film's picture (no sound) in one pass into `target`; still clips' frames come from
    `frames_of`. Named pipes live in `scratch`."""
    if not t.clips:
        raise AssemblyError("the film has no shots")
    size = enc.size(t)
    feeders: list = []
    fifo_dir = Path(tempfile.mkdtemp(prefix="pipes-", dir=scratch))
    try:
        streams, index = [], 0
        for n, seg in enumerate(_segments(t)):
            frames = sum(c.frames for c in seg)
            if seg[0].source == "video":
                s = _video_stream(t, seg[0], 0, frames, root, size)
            else:
                s = _still_stream(t, [(c, 0, c.frames) for c in seg], size, fifo_dir / f"segment{n}.yuv", feeders,
                                  frames_of)
            streams.append((s.filter("setsar", 1).filter("settb", "AVTB"), frames, index))
            index += len(seg)
        out, length = streams[0][0], streams[0][1]
        for s, frames, first_clip in streams[1:]:
            tr = t.clips[first_clip - 1].transition
            if tr is not None and tr.kind != "cut" and tr.frames > 0:
                out = ffmpeg_graph.filter([out, s], "xfade", **_xfade(tr), duration=_seconds(tr.frames / t.fps),
                                          offset=_seconds((length - tr.frames) / t.fps))
                length += frames - tr.frames
            else:
                out = ffmpeg_graph.concat(out, s, v=1, a=0)
                length += frames
        if length != t.frames:
            raise AssemblyError(f"internal: the picture would be {length} frames, the timeline says {t.frames}")
        out = _finish(out, t.frames, t.fade_in, t.fade_out)
        if subtitles is not None:
            # a digest-named file in the working directory: no writer's text in the filter graph
            out = out.filter("subtitles", subtitles.name, force_style=BURN_STYLE)
        _encode(out, target, enc, ff, subtitles.parent if subtitles else scratch, feeders, on_progress,
                "encoding the picture")
    finally:
        for p in fifo_dir.iterdir():
            p.unlink()
        fifo_dir.rmdir()


# ---------------------------------------------------------------------------- picture in segments
#
# An edit to one shot should re-encode that shot, not the film. The picture is cut into
# segments: each clip's body (its frames outside any transition) and each transition (the
# last frames of one clip dissolved into the first of the next). Each segment is encoded on
# its own (so it starts with an IDR frame: a closed GOP), cached under the digest of exactly
# what it shows, and the film's picture is their concatenation without re-encoding (concat
# demuxer, stream copy). Same encoder, settings, size and rate everywhere, so the pieces join
# into one valid H.264 stream.

SEGMENT_VERSION = "segment-1"
CONCAT_VERSION = "concat-1"


@dataclass(frozen=True)
class Piece:
    clip: int  # index into the timeline's clips
    start: int  # the clip's first frame used
    count: int


@dataclass(frozen=True)
class Segment:
    start: int  # its first frame in the film
    pieces: tuple[Piece, ...]  # one piece, or the two sides of `transition`
    transition: object = None  # film.Transition between pieces[0] and pieces[1]
    fade_in: int = 0  # film fade-in frames at its start
    fade_out: int = 0  # film fade-out frames at its end

    @property
    def frames(self) -> int:
        return self.pieces[0].count if self.transition is not None else sum(p.count for p in self.pieces)

    def shots(self, t: Timeline) -> list[str]:
        return [t.clips[p.clip].shot for p in self.pieces]


def _overlap(clip: Clip) -> int:
    tr = clip.transition
    return tr.frames if tr is not None and tr.kind != "cut" and tr.frames > 0 else 0


def plan_segments(t: Timeline) -> list[Segment] | None:
    """The film's picture as segments, in order; None when a film fade reaches past its first or
    last body (then the picture is encoded in one pass)."""
    segments: list[Segment] = []
    at = 0
    for i, clip in enumerate(t.clips):
        head = _overlap(t.clips[i - 1]) if i > 0 else 0
        tail = _overlap(clip) if i + 1 < len(t.clips) else 0
        body = clip.frames - head - tail
        if body < 0:
            return None
        if body:
            segments.append(Segment(at, (Piece(i, head, body),)))
            at += body
        if tail:
            segments.append(Segment(at, (Piece(i, clip.frames - tail, tail), Piece(i + 1, 0, tail)), clip.transition))
            at += tail
    if at != t.frames or not segments:
        raise AssemblyError(f"internal: the segments hold {at} frames, the timeline says {t.frames}")
    first, last = segments[0], segments[-1]
    if (t.fade_in and (first.transition is not None or first.frames < t.fade_in)) or \
            (t.fade_out and (last.transition is not None or last.frames < t.fade_out)):
        return None
    if len(segments) == 1:
        return [Segment(0, first.pieces, None, t.fade_in, t.fade_out)]
    return [Segment(0, first.pieces, None, t.fade_in, 0), *segments[1:-1],
            Segment(last.start, last.pieces, None, 0, t.fade_out)]


def segment_inputs(t: Timeline, seg: Segment, root: Path) -> dict:
    """Exactly what a segment shows: its pieces (the clips without their place in the film), the
    files they read by digest, its transition and fades. Its cache key is the digest of this."""
    pieces = []
    for p in seg.pieces:
        clip = t.clips[p.clip].model_dump(mode="json", exclude={"start", "transition", "scene"})
        # only the overlays the piece shows: a line's words that leave before a transition do not reach it
        clip["overlays"] = [o for o in clip["overlays"] if o["start"] < p.start + p.count and o["end"] > p.start]
        files = [*clip["files"], *(o["file"] for o in clip["overlays"])]
        pieces.append({"clip": clip, "start": p.start, "count": p.count,
                       "digests": {f: _digest_or_missing(root / f) for f in files}})
    return {"size": [t.width, t.height], "fps": [t.fps_num, t.fps_den], "pieces": pieces,
            "transition": seg.transition.model_dump(mode="json") if seg.transition is not None else None,
            "fades": [seg.fade_in, seg.fade_out]}


def _digest_or_missing(path: Path) -> str:
    """A file's digest; "missing" for one not made yet (a plan's key then matches no cached segment)."""
    from storylang.cache import file_digest

    return file_digest(path) if path.is_file() else "missing"


def _piece_stream(t: Timeline, piece: Piece, root: Path, size, fifo_dir: Path, feeders: list, frames_of: FrameSource,
                  name: str):
    """One piece of a clip as a filter-graph stream of exactly piece.count frames."""
    c = t.clips[piece.clip]
    if c.source == "video":
        s = _video_stream(t, c, piece.start, piece.count, root, size)
    else:
        s = _still_stream(t, [(c, piece.start, piece.count)], size, fifo_dir / f"{name}.yuv", feeders, frames_of)
    return s.filter("setsar", 1).filter("settb", "AVTB")


def encode_segment(t: Timeline, seg: Segment, root: Path, scratch: Path, target: Path, enc: Encoding, ff: Ffmpeg,
                   frames_of: FrameSource, on_progress: Callable[[int], None] | None = None,
                   stop: Callable[[], None] | None = None) -> None:
    """One segment of the picture, encoded on its own into `target`."""
    size = enc.size(t)
    feeders: list = []
    fifo_dir = Path(tempfile.mkdtemp(prefix="pipes-", dir=scratch))
    try:
        streams = [_piece_stream(t, p, root, size, fifo_dir, feeders, frames_of, f"piece{k}")
                   for k, p in enumerate(seg.pieces)]
        out = streams[0]
        if seg.transition is not None:
            out = ffmpeg_graph.filter(streams, "xfade", **_xfade(seg.transition),
                                      duration=_seconds(seg.frames / t.fps), offset=0)
        out = _finish(out, seg.frames, seg.fade_in, seg.fade_out).filter("trim", end_frame=seg.frames)
        shots = seg.shots(t)
        _encode(out, target, enc, ff, scratch, feeders, on_progress,
                f"encoding the picture (shot{'s' * (len(shots) > 1)} {' and '.join(shots)})", stop)
    finally:
        for p in fifo_dir.iterdir():
            p.unlink()
        fifo_dir.rmdir()


def _encode(out, target: Path, enc: Encoding, ff: Ffmpeg, cwd: Path, feeders: list, on_progress, what: str,
            stop: Callable[[], None] | None = None) -> None:
    with atomic.atomic_path(target, suffix=".mp4") as tmp:
        stream = ffmpeg_graph.output(
            out, str(tmp), f="mp4", vcodec="libx264", preset=enc.preset, crf=enc.crf, pix_fmt="yuv420p",
            colorspace="smpte170m", color_primaries="smpte170m", color_trc="smpte170m", color_range="tv",
            an=None, **{"x264-params": "log-level=error"},
        ).global_args("-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1")
        run_ffmpeg(stream.compile(cmd=ff.path, overwrite_output=True), cwd=cwd, what=what, on_progress=on_progress,
             feeders=feeders, stop=stop)


def _joined(files: list[Path], d: Path) -> list[str]:
    """ffmpeg input arguments reading `files` one after the other without re-encoding: the concat
    demuxer (its list quotes each path; a quote in a folder's name is written as it reads one)."""
    if len(files) == 1:
        return ["-i", str(files[0])]
    listing = d / "files.txt"
    listing.write_text("".join("file '" + str(f.resolve()).replace("'", "'\\''") + "'\n" for f in files),
                       encoding="utf-8")
    return ["-f", "concat", "-safe", "0", "-i", str(listing)]


def concat(files: list[Path], target: Path, ff: Ffmpeg, scratch: Path) -> None:
    """Encoded segments joined into one picture without re-encoding (the concat demuxer)."""
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        with atomic.atomic_path(target, suffix=".mp4") as tmp:
            run_ffmpeg([ff.path, "-hide_banner", "-nostats", "-loglevel", "error", "-y", *_joined(files, Path(d)),
                        "-c", "copy", "-an", "-f", "mp4", str(tmp)], cwd=Path(d), what="joining the picture's segments")


# ---------------------------------------------------------------------------- mux


def _meta_escape(text: str) -> str:
    out = []
    for ch in inert(text, newlines=True):
        if ch in "=;#\\\n":
            out.append("\\")
        out.append(ch)
    return "".join(out)


def metadata(t: Timeline, provenance: str, manifest: str = "") -> str:
    """An ffmetadata file: title, author, provenance (a line, and the manifest as `synopsis`: see
    provenance.py) and one chapter per scene (times in frames)."""
    lines = [";FFMETADATA1", f"title={_meta_escape(t.title)}"]
    if t.author:
        lines.append(f"artist={_meta_escape(t.author)}")
    lines.append(f"comment={_meta_escape(provenance)}")
    if manifest:
        lines.append(f"synopsis={_meta_escape(manifest)}")
    for c in t.chapters:
        lines += ["[CHAPTER]", f"TIMEBASE={t.fps_den}/{t.fps_num}", f"START={c.start}", f"END={c.end}",
                  f"title={_meta_escape(c.title)}"]
    return "\n".join(lines) + "\n"


def mux(picture_files: list[Path], sound_file: Path, meta: str, target: Path, ff: Ffmpeg, scratch: Path) -> None:
    """The film: its picture (one file, or joined from its scenes as it is written), sound and metadata."""
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        meta_file = Path(d) / "metadata.txt"
        meta_file.write_text(meta, encoding="utf-8")
        with atomic.atomic_path(target, suffix=".mp4") as tmp:
            args = [ff.path, "-hide_banner", "-nostats", "-loglevel", "error", "-y", *_joined(picture_files, Path(d)),
                    "-i", str(sound_file), "-f", "ffmetadata", "-i", str(meta_file),
                    "-map", "0:v:0", "-map", "1:a:0", "-map_metadata", "2", "-map_chapters", "2",
                    "-c", "copy", "-movflags", "+faststart", "-f", "mp4", str(tmp)]
            run_ffmpeg(args, cwd=Path(d), what="writing the film")
