"""The film's sound, in pieces: speech and music mixed, loudness-normalised, encoded to AAC.

An edit to one line should not re-encode the whole film's sound. The sound track is cut on a
fixed grid of 8 s pieces (375 AAC frames of 1024 samples, 80 loudness blocks of 100 ms). Each
piece is mixed from only the speech and music that reach it, then
- measured: the loudness of each 400 ms block ending in it (EBU R128 / ITU-R BS.1770, K-weighted,
  read from ffmpeg's `ebur128` filter) and its true peak. The film's integrated loudness is gated
  from all pieces' blocks, as one pass over the film would gate them, so one piece's measure never
  goes stale with another's edit;
- encoded with the film's gain: a multiple of 0.5 dB (within ±0.25 LU of -16 LUFS), so that a small
  edit usually leaves it, and with it every other piece's encoding, as it was. That is also why a
  piece not measured yet is measured and encoded in one pass at the level of the film's last sound
  when there was one: a second encode follows only if the film's level moved.
Each piece is encoded with 24 AAC frames of the sound before it and 8 after, and only its own
frames are kept: at every seam the encoder has seen what one pass would (its windows and
psychoacoustic state settled), so the kept packets join into one AAC stream without a click
(measured: the joined track's SNR to the mix is that of one pass). Joined, the stream is put in
an MP4 whose edit list drops the encoder's 1024 priming samples and ends on the film's last
sample, as a single encode would.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ffmpeg as ffmpeg_graph

from storylang import atomic
from storylang.assemble import AssemblyError, Encoding, run_ffmpeg
from storylang.cache import Cache, digest, file_digest
from storylang.timeline import Music, Speech, Timeline
from storylang.toolchain import Ffmpeg

SOUND_VERSION = "sound-4"
PIECE_VERSION = "sound-piece-1"
SAMPLE_RATE = 48000
LOUDNESS = -16.0
TRUE_PEAK = -1.5
GAIN_STEP = 0.5  # dB
DUCK_RAMP = 0.15  # seconds

FRAME = 1024  # samples in an AAC frame
BLOCK = SAMPLE_RATE // 10  # the 100 ms step of the loudness blocks
PIECE = 375 * FRAME  # 8 s: a whole number of AAC frames and of loudness blocks
ENCODE_BEFORE = 24 * FRAME
ENCODE_AFTER = 8 * FRAME
MEASURE_BEFORE = 5 * BLOCK  # a block's 400 ms, and 100 ms for the K-weighting filters to settle
# Speech this close to a window may still change it: a line's samples end within its frames (its
# length is its spoken length rounded up to frames), its duck ramp reaches DUCK_RAMP past them, and
# the ducking gain is read once per 1024-sample frame, which may begin before the window. Two frames
# more cover the resampler's rounding. A line further away adds exact zeros: leaving it out changes
# no sample, and an edit to it re-encodes no piece it cannot be heard in.
REACH = round(DUCK_RAMP * SAMPLE_RATE) + 2 * FRAME
SILENT = -70.0  # LUFS: BS.1770's absolute gate


@dataclass(frozen=True)
class Piece:
    start: int  # its own samples: [start, end)
    end: int
    last: bool


def pieces(total: int) -> list[Piece]:
    starts = list(range(0, total, PIECE))
    return [Piece(s, min(s + PIECE, total), k == len(starts) - 1) for k, s in enumerate(starts)]


def _at(t: Timeline, frame: int) -> int:
    """A film frame's first sample (or a number of frames in samples)."""
    return round(t.seconds(frame) * SAMPLE_RATE)


def total_samples(t: Timeline) -> int:
    return _at(t, t.frames)


# ---------------------------------------------------------------------------- one window of the mix


@dataclass
class Window:
    """The mix between samples lo and hi of the film: what it hears, and the key of exactly that."""

    t: Timeline
    root: Path
    lo: int
    hi: int
    speech: list[Speech]
    music: list[Music]

    @classmethod
    def of(cls, t: Timeline, root: Path, lo: int, hi: int) -> "Window":
        speech = [s for s in t.speech if _at(t, s.start) < hi + REACH and _at(t, s.start + s.frames) > lo - REACH]
        music = [m for m in t.music if _at(t, m.start) < hi and _at(t, m.end) > lo]
        return cls(t, root, lo, hi, speech, music)

    def recipe(self) -> dict:
        t = self.t
        return {"window": [self.lo, self.hi], "fps": [t.fps_num, t.fps_den], "fades": self._fades_here(),
                "speech": [{**s.model_dump(mode="json", include={"start", "frames"}),
                            "file": file_digest(self.root / s.file)} for s in self.speech],
                "music": [self._music_here(m) for m in self.music]}

    def _music_here(self, m: Music) -> dict:
        """A music cue as this window hears it: where it ends matters only to a window that
        reaches its fade-out (or its end)."""
        t = self.t
        cue = {**m.model_dump(mode="json", exclude={"file"}), "file": file_digest(self.root / m.file)}
        fading = _at(t, m.end) - (_at(t, min(m.fade_out, m.end - m.start)) if m.fade_out else 0)
        if self.hi <= fading:
            cue["end"] = cue["fade_out"] = "after this window"
        return cue

    def _fades_here(self) -> dict:
        """The film's fades that reach this window (those that do not leave its samples alone)."""
        t, out = self.t, {}
        if t.fade_in and self.lo < _at(t, t.fade_in):
            out["in"] = _at(t, t.fade_in)
        if t.fade_out and self.hi > _at(t, t.frames - t.fade_out):
            out["out"] = [_at(t, t.frames - t.fade_out), _at(t, t.frames)]
        return out

    def stream(self):
        """The window's mix (film fades applied, no gain), exactly hi - lo samples."""
        length = self.hi - self.lo
        sources = self._sources()
        buses = ([self._voice(s, next(sources[s.file])) for s in self.speech]
                 + [self._music(m, next(sources[m.file])) for m in self.music])
        if not buses:
            return ffmpeg_graph.input(f"anullsrc=r={SAMPLE_RATE}:cl=stereo", f="lavfi").audio \
                .filter("atrim", end_sample=length)
        # Each bus is placed on the film's own clock and faded there, then cut to the window: the
        # same sample of the film is the same number in every window that holds it.
        cut = [self._faded(b).filter("atrim", start_sample=self.lo, end_sample=self.hi)
               .filter("asetpts", "PTS-STARTPTS") for b in buses]
        mixed = cut[0] if len(cut) == 1 else ffmpeg_graph.filter(cut, "amix", inputs=len(cut), normalize=0,
                                                                 dropout_transition=0)
        return (mixed.filter("aformat", sample_fmts="fltp", channel_layouts="stereo")
                .filter("apad", whole_len=length).filter("atrim", end_sample=length))

    def _input(self, file: str):
        return (ffmpeg_graph.input(str((self.root / file).resolve())).audio
                .filter("aresample", SAMPLE_RATE)
                .filter("aformat", sample_fmts="fltp", channel_layouts="stereo"))

    def _sources(self) -> dict:
        """Per file, the streams of its uses in the window. A file heard twice (the same line said
        again, one cue in two scenes) is read once and split: ffmpeg-python makes one node of two
        identical inputs, and a node may feed one filter only."""
        uses = Counter(s.file for s in self.speech) + Counter(m.file for m in self.music)
        out = {}
        for file, n in uses.items():
            one = self._input(file)
            split = one.filter_multi_output("asplit", n) if n > 1 else None
            out[file] = iter([one] if split is None else [split.stream(i) for i in range(n)])
        return out

    def _voice(self, s: Speech, source):
        return source.filter("adelay", delays=f"{_at(self.t, s.start)}S", all=1)

    def _music(self, m: Music, source):
        t = self.t
        length = _at(t, m.end) - _at(t, m.start)
        a = source.filter("atrim", end_sample=length).filter("asetpts", "PTS-STARTPTS")
        if m.fade_in:
            a = a.filter("afade", type="in", start_sample=0, nb_samples=_at(t, m.fade_in))
        if m.fade_out:
            fo = _at(t, min(m.fade_out, m.end - m.start))
            a = a.filter("afade", type="out", start_sample=length - fo, nb_samples=fo)
        a = a.filter("volume", volume=f"{m.volume_db}dB")
        a = a.filter("adelay", delays=f"{_at(t, m.start)}S", all=1)
        expr = duck_expression(t, self.speech, m.duck_db)
        if expr:
            # frames of 1024 from the film's start: the ducking gain (evaluated once per frame) then
            # changes at the same samples in every window
            a = a.filter("asetnsamples", n=FRAME, p=0).filter("volume", volume=expr, eval="frame")
        return a

    def _faded(self, bus):
        """The film's fades on a bus (those that reach the window: the key holds the same)."""
        fades = self._fades_here()
        if "in" in fades:
            bus = bus.filter("afade", type="in", start_sample=0, nb_samples=fades["in"])
        if "out" in fades:
            start, end = fades["out"]
            bus = bus.filter("afade", type="out", start_sample=start, nb_samples=end - start)
        return bus


def duck_expression(t: Timeline, speech: list[Speech], duck_db: float, ramp: float = DUCK_RAMP) -> str | None:
    """A volume expression (of t, in seconds) that lowers music by duck_db while anyone speaks."""
    if not speech or duck_db >= 0:
        return None
    gain = 10 ** (duck_db / 20)
    terms = []
    for s in speech:
        a, b = round(float(t.seconds(s.start)), 6), round(float(t.seconds(s.start + s.frames)), 6)
        terms.append(f"clip(min((t-{a}+{ramp})/{ramp},({b}+{ramp}-t)/{ramp}),0,1)")
    return f"1-{round(1 - gain, 6)}*min(1,{'+'.join(terms)})"


# ---------------------------------------------------------------------------- measure


def measure_piece(w: Window, piece: Piece, ff: Ffmpeg, scratch: Path, stop=None) -> dict:
    """The loudness (LUFS, 3 decimals) of every 400 ms block ending inside the piece, above the
    absolute gate, and the piece's true peak (linear)."""
    if not w.speech and not w.music:
        return {"blocks": [], "peak": 0.0}
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        log = Path(d) / "blocks.txt"
        # one frame per block: ebur128 then reports, on frame n, the block ending with it
        out = _loudness(w.stream(), log.name)
        run_ffmpeg(_args(ffmpeg_graph.output(out, "-", f="null"), ff), cwd=Path(d),
                   what="measuring the loudness of the sound", stop=stop)
        return _read_blocks(log.read_text(encoding="utf-8"), w, piece)


def _loudness(stream, log: str):
    """A mix measured: one frame per block, each frame's loudness and true peak printed to `log`."""
    return (stream.filter("asetnsamples", n=BLOCK, p=0)
            .filter("ebur128", metadata=1, peak="true", framelog="quiet")
            .filter("ametadata", mode="print", file=log))


def _read_blocks(text: str, w: Window, piece: Piece) -> dict:
    """The blocks ending inside the piece (above the absolute gate) and its true peak, from the log
    of a measure of window `w`."""
    blocks, peak = [], 0.0
    for n, frame in enumerate(re.split(r"^frame:", text, flags=re.M)[1:]):
        first = w.lo + n * BLOCK
        ends = first + BLOCK
        m = re.search(r"lavfi\.r128\.M=(-?[\d.]+|-?inf|nan)", frame)
        if m and piece.start < ends <= piece.end:
            value = float(m.group(1))
            if value >= SILENT:
                blocks.append(value)
        p = re.search(r"lavfi\.r128\.true_peak=([\d.]+)", frame)
        if p and piece.start <= first < piece.end:
            peak = max(peak, float(p.group(1)))
    return {"blocks": blocks, "peak": peak}


def integrated(blocks: list[float]) -> float | None:
    """BS.1770 integrated loudness from block loudnesses above the absolute gate; None for silence."""
    def mean_loudness(values: list[float]) -> float:
        return -0.691 + 10 * math.log10(sum(10 ** ((v + 0.691) / 10) for v in values) / len(values))

    if not blocks:
        return None
    relative = mean_loudness(blocks) - 10
    return mean_loudness([b for b in blocks if b > relative])


def levels(measures: list[dict]) -> dict:
    """The film's gain (a multiple of GAIN_STEP dB) and whether a limiter keeps its true peak down."""
    loud = integrated([b for m in measures for b in m["blocks"]])
    peak = max((m["peak"] for m in measures), default=0.0)
    if loud is None or peak <= 0:
        return {"gain": 0.0, "limit": False}
    gain = round((LOUDNESS - loud) / GAIN_STEP) * GAIN_STEP
    return {"gain": gain, "limit": 20 * math.log10(peak) + gain > TRUE_PEAK}


# ---------------------------------------------------------------------------- encode and join


def _adts_frames(data: bytes) -> list[bytes]:
    frames, i = [], 0
    while i + 7 <= len(data):
        if data[i] != 0xFF or data[i + 1] & 0xF6 != 0xF0:
            raise AssemblyError("internal: the AAC encoder wrote a stream that is not ADTS")
        n = ((data[i + 3] & 3) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
        frames.append(data[i:i + n])
        i += n
    return frames


def encode_piece(w: Window, piece: Piece, level: dict, enc: Encoding, ff: Ffmpeg, scratch: Path, target: Path,
                 stop=None) -> None:
    """The piece's own AAC frames (ADTS), from an encode of its window."""
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        raw = Path(d) / "piece.aac"
        stream = ffmpeg_graph.output(_levelled(w.stream(), level), str(raw), **_aac(enc))
        run_ffmpeg(_args(stream, ff), cwd=Path(d), what="encoding the sound", stop=stop)
        atomic.write_bytes(target, _own_frames(raw.read_bytes(), w, piece))


def measure_and_encode(w: Window, measured: Window, piece: Piece, level: dict, enc: Encoding, ff: Ffmpeg,
                       scratch: Path, target: Path, stop=None) -> dict:
    """encode_piece and measure_piece in one pass over the encode window `w` (it holds the measure
    window `measured`): what the piece's level will most likely be is known before its measure
    (the film's, unless this edit moved its loudness past a step), and one pass mixes once.
    Returns the measure; the frames and the measure are those the two passes make (tested)."""
    if not measured.speech and not measured.music:
        encode_piece(w, piece, level, enc, ff, scratch, target, stop)
        return {"blocks": [], "peak": 0.0}
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        raw, log = Path(d) / "piece.aac", Path(d) / "blocks.txt"
        both = w.stream().filter_multi_output("asplit", 2)
        # the same film samples as the measure window's own mix: every window places its buses on
        # the film's clock, and what it holds beyond them adds exact zeros
        part = (both.stream(1).filter("atrim", start_sample=measured.lo - w.lo, end_sample=measured.hi - w.lo)
                .filter("asetpts", "PTS-STARTPTS"))
        stream = ffmpeg_graph.merge_outputs(ffmpeg_graph.output(_levelled(both.stream(0), level), str(raw), **_aac(enc)),
                                            ffmpeg_graph.output(_loudness(part, log.name), "-", f="null"))
        run_ffmpeg(_args(stream, ff), cwd=Path(d), what="encoding the sound", stop=stop)
        atomic.write_bytes(target, _own_frames(raw.read_bytes(), w, piece))
        return _read_blocks(log.read_text(encoding="utf-8"), measured, piece)


def _levelled(mix, level: dict):
    """A window's mix at the film's gain, limited if its peak would pass the ceiling."""
    if level["gain"]:
        mix = mix.filter("volume", volume=f"{level['gain']}dB")
    if level["limit"]:
        mix = mix.filter("alimiter", limit=round(10 ** (TRUE_PEAK / 20), 4), level="disabled", latency=1)
    return mix.filter("aformat", sample_fmts="fltp", channel_layouts="stereo")


def _aac(enc: Encoding) -> dict:
    return {"f": "adts", "acodec": "aac", "audio_bitrate": enc.audio_bitrate, "ar": SAMPLE_RATE}


def _args(stream, ff: Ffmpeg) -> list[str]:
    return (stream.global_args("-hide_banner", "-nostats", "-loglevel", "error", "-progress", "pipe:1")
            .compile(cmd=ff.path, overwrite_output=True))


def _own_frames(data: bytes, w: Window, piece: Piece) -> bytes:
    """Of an encode of window `w`, the AAC frames that are the piece's own."""
    frames = _adts_frames(data)
    skip = (piece.start - w.lo) // FRAME
    keep = frames[skip:] if piece.last else frames[skip:skip + (piece.end - piece.start) // FRAME]
    return b"".join(keep)


def join(files: list[Path], total: int, target: Path, ff: Ffmpeg, scratch: Path) -> None:
    """The pieces' frames as one AAC track in an MP4: the first 1024 samples (the encoder's priming)
    dropped by the edit list, the last frame cut to end on the film's last sample."""
    with tempfile.TemporaryDirectory(dir=scratch) as d:
        data = b"".join(f.read_bytes() for f in files)
        count = len(_adts_frames(data))
        last = total - (count - 2) * FRAME  # the samples of the last frame that are the film's
        if count < 2 or not 0 < last <= FRAME:
            raise AssemblyError(f"internal: {count} AAC frames cannot hold {total} samples")
        joined = Path(d) / "sound.aac"
        joined.write_bytes(data)
        with atomic.atomic_path(target, suffix=".m4a") as tmp:
            run_ffmpeg([ff.path, "-hide_banner", "-nostats", "-loglevel", "error", "-y",
                        "-itsoffset", f"-{FRAME / SAMPLE_RATE:.9f}", "-f", "aac", "-i", str(joined), "-c", "copy",
                        "-bsf:a", f"setts=duration=if(eq(N\\,{count - 1})\\,{last}*DURATION/{FRAME}\\,DURATION)",
                        "-f", "mp4", str(tmp)], cwd=Path(d), what="joining the sound's pieces")


# ---------------------------------------------------------------------------- the film's sound


@dataclass
class Sound:
    files: list[Path]  # every cached artifact the sound is made of (kept by the cache's trimming)
    encoded: int
    pieces: int
    level: dict  # the film's gain and limiter: the next build's likely level

    def state(self) -> str:
        if self.encoded == self.pieces:
            return "mixed"
        return f"mixed ({self.encoded} of {self.pieces} pieces)"


def sound(t: Timeline, root: Path, target: Path, enc: Encoding, ff: Ffmpeg, cache: Cache, scratch: Path,
          stop: Callable[[], None] | None = None, jobs: int = 2, likely: dict | None = None) -> Sound:
    """The film's sound track (AAC, 48 kHz stereo) at `target`, from cached pieces where it can;
    `jobs` pieces measured or encoded at a time.

    `likely` is the level of the film's last sound. A piece not measured yet is then measured
    while it is encoded at that level, in one pass; should the film's level turn out otherwise,
    it is encoded again at the right one. Without it (a first build) every piece is measured
    first, then encoded."""
    total = total_samples(t)
    plan = pieces(total)
    common = {"stage": PIECE_VERSION, "ffmpeg": ff.version}

    def go_on() -> None:  # a superseded build stops before each piece (finished ones stay cached)
        if stop is not None:
            stop()

    def measure_window(p: Piece) -> Window:
        return Window.of(t, root, max(p.start - MEASURE_BEFORE, 0), p.end)

    def encode_window(p: Piece) -> Window:
        return Window.of(t, root, max(p.start - ENCODE_BEFORE, 0), min(p.end + ENCODE_AFTER, total))

    def measure_file(p: Piece, w: Window) -> Path:
        return cache.path("sound-measures", digest({**common, "measure": w.recipe(), "own": [p.start, p.end]}),
                          ".json")

    def piece_file(p: Piece, w: Window, level: dict) -> Path:
        key = digest({**common, "encode": w.recipe(), "own": [p.start, p.end], "last": p.last, "level": level,
                      "bitrate": enc.audio_bitrate})
        return cache.path("sound-pieces", key, ".aac")

    made_with_measure: set[Path] = set()

    def measure(p: Piece) -> tuple[Path, dict]:
        go_on()
        w = measure_window(p)
        file = measure_file(p, w)
        found = _read_json(file)
        if found is None:
            e = encode_window(p) if likely is not None else None
            made = piece_file(p, e, likely) if e is not None else None
            if made is not None and not made.is_file():
                found = measure_and_encode(e, w, p, likely, enc, ff, scratch, made, stop)
                made_with_measure.add(made)
            else:
                found = measure_piece(w, p, ff, scratch, stop)
            atomic.write_text(file, json.dumps(found, sort_keys=True))
        return file, found

    with ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool:
        measured = _each(pool, measure, plan)
        level = levels([m for _, m in measured])

        def encode(p: Piece) -> tuple[Path, bool]:
            go_on()
            w = encode_window(p)
            file = piece_file(p, w, level)
            if file.is_file():
                return file, False
            encode_piece(w, p, level, enc, ff, scratch, file, stop)
            return file, True

        encoded = _each(pool, encode, plan)
    join([f for f, _ in encoded], total, target, ff, scratch)
    made = sum(1 for f, e in encoded if e or f in made_with_measure)
    return Sound([f for f, _ in measured] + [f for f, _ in encoded], made, len(plan), level)


def _each(pool: ThreadPoolExecutor, fn, items: list) -> list:
    """fn of every item on the pool, in order; on the first failure the pieces not begun are dropped
    (not each run to its own failure) before it is raised."""
    futures = [pool.submit(fn, item) for item in items]
    try:
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            f.cancel()
        raise


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
