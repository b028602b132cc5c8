"""The sound in pieces: one seamless AAC track, exactly the film's length, re-encoded only where an edit reaches."""

import array
import json
import math
import shutil
import subprocess
from pathlib import Path

import ffmpeg as ffmpeg_graph
import pytest

from storylang import mix
from storylang.build import BuildOptions, build
from storylang.timeline import Timeline
from storylang.toolchain import find_ffmpeg

from media import ffmpeg

# 30 s: four pieces, music under all of it (a seam in a sustained tone is where a click would show)
FILM = '''title "Pieces" 0s
format 256x144 @ 12fps
narrator "en-us" rate 180

EXT. CLIFF - NIGHT
  music "theme.ogg" volume -14dB duck -8dB
  shot 1 wide 7s
    action "the beam sweeps"
    narrate "Every night she climbed the stairs."

  shot 2 medium 8s
    action "the lamp"
    narrate "The sea was loud that year."

  shot 3 wide 7s
    action "the rocks"

  shot 4 wide 8s
    action "the lamp goes dark"
    narrate "And then one night, it did not."
'''


@pytest.fixture(scope="module")
def film(tmp_path_factory):
    d = tmp_path_factory.mktemp("mix")
    # two tones beating against each other: never silent, never still
    subprocess.run([ffmpeg(), "-v", "error", "-f", "lavfi", "-i", "sine=f=220:d=40", "-f", "lavfi", "-i",
                    "sine=f=331:d=40", "-filter_complex", "amix=inputs=2", str(d / "theme.ogg")], check=True)
    (d / "film.story").write_text(FILM)
    report = build(d / "film.story", BuildOptions(jobs=2, preview=True))
    return d, report


def pcm(path: Path) -> array.array:
    out = subprocess.run([ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:a:0", "-f", "f32le", "-ac", "1", "-"],
                         capture_output=True, check=True).stdout
    return array.array("f", out)


def snr(ref, x, lo, hi) -> float:
    signal = sum(v * v for v in ref[lo:hi])
    noise = sum((a - b) ** 2 for a, b in zip(ref[lo:hi], x[lo:hi]))
    return 10 * math.log10(signal / noise)


def test_the_joined_pieces_are_the_film_long_and_as_clean_as_one_pass(film, tmp_path):
    d, report = film
    t = Timeline.model_validate_json((d / "build" / "film" / "timeline.json").read_text())
    total = mix.total_samples(t)
    plan = mix.pieces(total)
    assert len(plan) == 4 and report.sound == "mixed"
    ff = find_ffmpeg()
    # the same mix, uncompressed and encoded in one pass, at the film's level
    level = mix.levels([mix.measure_piece(mix.Window.of(t, d, max(p.start - mix.MEASURE_BEFORE, 0), p.end), p, ff,
                                          tmp_path) for p in plan])
    stream = mix.Window.of(t, d, 0, total).stream().filter("volume", volume=f"{level['gain']}dB")
    if level["limit"]:
        stream = stream.filter("alimiter", limit=round(10 ** (mix.TRUE_PEAK / 20), 4), level="disabled", latency=1)
    for name, codec in (("ref.wav", {"acodec": "pcm_f32le"}), ("one.m4a", {"acodec": "aac", "audio_bitrate": "160k"})):
        (ffmpeg_graph.output(stream, str(tmp_path / name), **codec).global_args("-v", "error")
         .run(cmd=ff.path, overwrite_output=True))
    ref, one, joined = pcm(tmp_path / "ref.wav"), pcm(tmp_path / "one.m4a"), pcm(report.output)
    assert len(joined) == len(ref) == total  # priming dropped, last frame cut on the film's last sample
    assert snr(ref, joined, 0, total) > snr(ref, one, 0, total) - 0.5
    for p in plan[1:]:
        seam = (p.start - 2048, p.start + 2048)
        assert snr(ref, joined, *seam) > snr(ref, one, *seam) - 3, f"a click at {p.start / mix.SAMPLE_RATE} s"


def test_the_film_loudness_gated_from_the_pieces_blocks_is_what_ffmpeg_measures(film, tmp_path):
    d, _ = film
    t = Timeline.model_validate_json((d / "build" / "film" / "timeline.json").read_text())
    total = mix.total_samples(t)
    ff = find_ffmpeg()
    blocks = []
    for p in mix.pieces(total):
        blocks += mix.measure_piece(mix.Window.of(t, d, max(p.start - mix.MEASURE_BEFORE, 0), p.end), p, ff,
                                    tmp_path)["blocks"]
    whole = (ffmpeg_graph.output(mix.Window.of(t, d, 0, total).stream().filter("ebur128", framelog="quiet"), "-",
                                 f="null").global_args("-hide_banner", "-nostats").compile(cmd=ff.path))
    out = subprocess.run(whole, capture_output=True, text=True, cwd=d).stderr
    theirs = float(out.rsplit("I:", 1)[1].split("LUFS")[0])
    assert abs(mix.integrated(blocks) - theirs) < 0.1


def test_measuring_while_encoding_gives_the_two_passes_own_measure_and_frames(film, tmp_path):
    d, _ = film
    t = Timeline.model_validate_json((d / "build" / "film" / "timeline.json").read_text())
    total = mix.total_samples(t)
    ff = find_ffmpeg()
    level = {"gain": 3.5, "limit": True}  # a gain and the limiter: every filter of an encode
    for k, p in enumerate(mix.pieces(total)):
        measured = mix.Window.of(t, d, max(p.start - mix.MEASURE_BEFORE, 0), p.end)
        w = mix.Window.of(t, d, max(p.start - mix.ENCODE_BEFORE, 0), min(p.end + mix.ENCODE_AFTER, total))
        w.speech = list(t.speech)  # it hears more than the measure window (every line): they add exact zeros
        assert len(w.speech) > len(measured.speech)
        both = mix.measure_and_encode(w, measured, p, level, mix.Encoding(), ff, tmp_path, tmp_path / f"{k}-both.aac")
        mix.encode_piece(w, p, level, mix.Encoding(), ff, tmp_path, tmp_path / f"{k}-alone.aac")
        assert both == mix.measure_piece(measured, p, ff, tmp_path)
        assert (tmp_path / f"{k}-both.aac").read_bytes() == (tmp_path / f"{k}-alone.aac").read_bytes()


def test_a_wrong_likely_level_costs_a_second_encode_not_a_different_sound(film, tmp_path):
    from storylang.cache import Cache

    d, report = film
    t = Timeline.model_validate_json((d / "build" / "film" / "timeline.json").read_text())
    ff = find_ffmpeg()
    made = {}
    for name, likely in (("none", None), ("wrong", {"gain": -9.0, "limit": False})):
        (tmp_path / name).mkdir()
        s = mix.sound(t, d, tmp_path / name / "sound.m4a", mix.Encoding(), ff, Cache(tmp_path / name / "cache"),
                      tmp_path / name, likely=likely)
        assert s.encoded == s.pieces == 4 and s.level != likely
        made[name] = (tmp_path / name / "sound.m4a").read_bytes()
        right = mix.sound(t, d, tmp_path / name / "again.m4a", mix.Encoding(), ff, Cache(tmp_path / name / "cache"),
                          tmp_path / name, likely=s.level)
        assert right.encoded == 0 and right.level == s.level  # every piece found at its level
    assert made["wrong"] == made["none"]
    # the pieces encoded at the wrong level were encoded too, and kept apart from the right ones
    assert len(list((tmp_path / "wrong" / "cache" / "sound-pieces").rglob("*.aac"))) == 8


def test_the_gain_is_a_whole_number_of_steps_and_a_peak_over_the_ceiling_is_limited():
    quiet = [{"blocks": [-30.2] * 50, "peak": 0.05}]
    assert mix.levels(quiet) == {"gain": 14.0, "limit": False}
    loud = [{"blocks": [-20.0] * 50, "peak": 0.9}, {"blocks": [], "peak": 0.0}]
    assert mix.levels(loud) == {"gain": 4.0, "limit": True}
    assert mix.levels([{"blocks": [], "peak": 0.0}]) == {"gain": 0.0, "limit": False}
    # the relative gate drops blocks 10 LU below the ungated mean
    assert mix.integrated([-20.0] * 10 + [-60.0] * 10) == pytest.approx(-20.0, abs=1e-9)


def test_a_line_edit_re_encodes_only_the_pieces_it_reaches(film, tmp_path):
    d, first = film
    script, report = rebuilt(d, tmp_path, "And then one night, it did not.", "And one night, it did not.")
    assert report.frames == first.frames and report.lines_spoken == 1
    assert report.sound == "mixed (2 of 4 pieces)"  # the line's piece and the one its duck ramp reaches
    assert len(pcm(report.output)) == mix.total_samples(Timeline.model_validate_json(
        (script.parent / "build" / "film" / "timeline.json").read_text()))
    measures = list((script.parent / "build" / "cache" / "sound-measures").rglob("*.json"))
    assert all(set(json.loads(m.read_text())) == {"blocks", "peak"} for m in measures)
    assert pcm(report.output) == pcm(clean_build(d, script.read_text(), tmp_path).output)


def rebuilt(film_dir: Path, tmp_path: Path, old: str, new: str):
    """The built film copied, its script edited, and built again: (script, report)."""
    copy = tmp_path / "copy"
    shutil.copytree(film_dir, copy)
    script = copy / "film.story"
    script.write_text(FILM.replace(old, new))
    return script, build(script, BuildOptions(jobs=2, preview=True))


def clean_build(film_dir: Path, text: str, tmp_path: Path):
    """The same script built in a new folder: what an incremental build must sound like."""
    clean = tmp_path / "clean"
    clean.mkdir()
    shutil.copyfile(film_dir / "theme.ogg", clean / "theme.ogg")
    (clean / "film.story").write_text(text)
    report = build(clean / "film.story", BuildOptions(jobs=2, preview=True))
    assert report.sound == "mixed"
    return report


def test_a_longer_last_shot_re_encodes_only_the_piece_at_the_end_and_sounds_as_a_clean_build(film, tmp_path):
    d, first = film
    script, report = rebuilt(d, tmp_path, "  shot 4 wide 8s", "  shot 4 wide 9s")
    assert report.frames == first.frames + 12
    # only the last piece (24 s to the end) hears anything new: the music runs on under all of it,
    # but its end is heard in no other piece
    assert report.sound == "mixed (1 of 4 pieces)"
    fresh = clean_build(d, script.read_text(), tmp_path)
    assert pcm(report.output) == pcm(fresh.output) and len(pcm(fresh.output)) == 31 * mix.SAMPLE_RATE


def test_after_a_piece_fails_the_pieces_not_begun_are_not_run():
    import time
    from concurrent.futures import ThreadPoolExecutor

    ran = []

    def work(n):
        ran.append(n)
        if n == 0:
            raise RuntimeError("piece 0 failed")
        time.sleep(0.05)  # a piece takes a while: the failure is seen before the next ones begin
        return n

    with ThreadPoolExecutor(max_workers=1) as pool, pytest.raises(RuntimeError):
        mix._each(pool, work, list(range(20)))
    assert len(ran) <= 3


def test_a_line_said_again_is_heard_every_time(write_story, tmp_path):
    # the same words in the same voice are one file, read once and split: ffmpeg-python joined
    # the two readings into one node and the build ended in a traceback
    from media import mean_volume

    text = ('format 256x144 @ 24fps\ncharacter MARA\n  voice "en-us"\n'
            'EXT. A - DAY\n  shot 1 close on MARA 2s\n    MARA: Again.\n'
            '  shot 2 close on MARA 2s\n    MARA: Again.\n  shot 3 wide 2s\n    action "quiet"\n'
            '  shot 4 close on MARA 2s\n    MARA: Again.\n'
            '  shot 5 close on MARA 2s\n    MARA: Once more.\n  shot 6 close on MARA 2s\n    MARA: Once more.\n')
    report = build(write_story(text), BuildOptions(preview=True))
    volumes = [mean_volume(report.output, start, 1.0) for start in (0.2, 2.2, 4.2, 6.2, 8.2, 10.2)]
    assert all(volumes[i] > -40 for i in (0, 1, 3, 4, 5)), volumes  # two lines said twice: each every time
    assert volumes[2] < volumes[0] - 20, volumes
