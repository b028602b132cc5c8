"""`storyc build` makes a real film: frame-exact, with sound, subtitles, chapters and a cache."""

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import ImageChops, ImageStat

from storylang.build import BuildFailed, BuildOptions, build
from storylang.cli import main

from conftest import tiny_png, tiny_wav
from media import audio_seconds, count_frames, frame_at, gray_frames, info, loudness, mean_volume

FILM = '''title "Test Film" 0s
author "Tests"
format 384x216 @ 12fps
narrator "en-us" rate 180

character MARA
  look "silver braid"
  voice "en-us+f3" rate 170

EXT. CLIFF - NIGHT
  music "theme.ogg" volume -18dB fade in 1s duck -12dB

  shot 1 wide 3s
    camera push in fast 40% linear
    action "the beam sweeps"
    narrate "Every night, she climbed."
  > dissolve 0.5s

  shot 2 close on MARA 2s
    MARA: Not tonight.

INT. LAMP ROOM - NIGHT
  shot 3 medium on MARA 2s
    camera pan left
    action "she lets the lamp go dark"
'''


@pytest.fixture(scope="module")
def film_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("film")
    # a small music file, made with the project's ffmpeg
    from media import ffmpeg
    import subprocess

    subprocess.run([ffmpeg(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=220:d=20",
                    "-c:a", "libvorbis", str(d / "theme.ogg")], check=True)
    (d / "film.story").write_text(FILM)
    return d


@pytest.fixture(scope="module")
def built(film_dir):
    report = build(film_dir / "film.story", BuildOptions(jobs=2))
    timeline = json.loads(report.timeline.read_text())
    return report, timeline


def test_the_film_is_frame_exact(built):
    report, timeline = built
    expected = (3 + 2 + 2) * 12 - 6  # three shots minus one half-second dissolve
    assert timeline["frames"] == report.frames == expected
    assert count_frames(report.output) == expected


def test_the_film_has_picture_and_sound_of_equal_length(built):
    report, _ = built
    text = info(report.output)
    assert "Video: h264" in text and "yuv420p" in text and "384x216" in text
    assert "Audio: aac" in text and "48000 Hz" in text
    assert abs(audio_seconds(report.output) - report.seconds) <= 1 / 12 + 0.03


def test_title_provenance_and_one_chapter_per_scene(built):
    report, _ = built
    text = info(report.output)
    assert re.search(r"title\s+: Test Film", text)
    assert re.search(r"comment\s+: storyc \S+; renderer animatic; script sha256:[0-9a-f]{64}", text)
    assert len(re.findall(r"Chapter #", text)) == 2
    assert "INT. LAMP ROOM - NIGHT" in text


def test_sound_is_there_where_speech_is_and_loudness_is_normalised(built):
    report, timeline = built
    first = timeline["speech"][0]
    start = first["start"] / 12
    assert mean_volume(report.output, start + 0.1, 0.6) > -35
    assert -17.5 <= loudness(report.output) <= -14.5


def test_subtitles_match_speech_placement(built):
    report, timeline = built
    srt = report.subtitles[0].read_text()
    cues = re.findall(r"(\d\d):(\d\d):(\d\d),(\d{3}) --> (\d\d):(\d\d):(\d\d),(\d{3})\n(.+)", srt)
    assert len(cues) == len(timeline["speech"]) == 2
    for cue, s in zip(cues, timeline["speech"]):
        h, m, sec, ms = map(int, cue[:4])
        assert abs((h * 3600 + m * 60 + sec + ms / 1000) - s["start"] / 12) < 0.002
    assert cues[1][8] == "MARA: Not tonight."
    assert report.subtitles[1].read_text().startswith("WEBVTT")


def test_mid_shot_frames_differ_between_shots(built, tmp_path):
    report, timeline = built
    frames = [frame_at(report.output, c["start"] + c["frames"] // 2, 12, tmp_path / f"{i}.png")
              for i, c in enumerate(timeline["clips"])]
    for a, b in zip(frames, frames[1:]):
        assert ImageStat.Stat(ImageChops.difference(a, b)).mean[0] > 3


def test_a_push_in_magnifies_the_frame(built, tmp_path):
    from storylang.render.camera import shot_views
    from storylang.film import CameraMove

    report, timeline = built
    clip = timeline["clips"][0]
    n = clip["frames"]
    # late, but before the dissolve into shot 2 (its last 6 frames), which would blend in its picture
    i10, i75 = round(0.1 * (n - 1)), round(0.75 * (n - 1))
    views = shot_views((CameraMove(move="push", direction="in", speed="fast", amount=40, easing="linear"),), n, 12, 16 / 9)
    ratio = views[i75].zoom / views[i10].zoom
    early = frame_at(report.output, i10, 12, tmp_path / "a.png")
    late = frame_at(report.output, i75, 12, tmp_path / "b.png")
    w, h = early.size
    cw, ch = w / ratio, h / ratio
    magnified = early.crop(((w - cw) / 2, (h - ch) / 2, (w + cw) / 2, (h + ch) / 2)).resize((w, h))
    picture = (0, int(h * 0.3), w, int(h * 0.64))  # between the fixed words at the top and bottom
    magnified, early, late = magnified.crop(picture), early.crop(picture), late.crop(picture)
    assert ImageStat.Stat(ImageChops.difference(magnified, late)).mean[0] < 6
    assert ImageStat.Stat(ImageChops.difference(early, late)).mean[0] > 1.5 * ImageStat.Stat(
        ImageChops.difference(magnified, late)).mean[0]


def test_a_second_build_reuses_everything(built, film_dir):
    report = build(film_dir / "film.story", BuildOptions(jobs=2))
    assert (report.rendered, report.lines_spoken, report.picture, report.sound, report.film) == (0, 0, "reused", "reused", "reused")


def build_edited(film_dir, tmp_path, old, new):
    """Build a copy of the film (sharing nothing but the files) with one edit."""
    copy = tmp_path / "copy"
    shutil.copytree(film_dir, copy)
    script = copy / "film.story"
    script.write_text(FILM.replace(old, new))
    return build(script, BuildOptions(jobs=2))


def test_editing_narration_re_speaks_and_re_mixes_but_never_redraws_a_picture(built, film_dir, tmp_path):
    report = build_edited(film_dir, tmp_path, "Every night, she climbed.", "Each night, she climbed.")
    assert report.rendered == 0 and report.lines_spoken == 1 and report.lines_reused == 1
    assert report.sound == "mixed"
    assert report.labels_drawn == 1  # the card shows the line being spoken: only that overlay changes


def test_editing_one_action_redraws_exactly_that_shots_words(built, film_dir, tmp_path):
    report = build_edited(film_dir, tmp_path, "she lets the lamp go dark", "she lets the lamp burn")
    assert (report.rendered, report.reused, report.lines_spoken, report.labels_drawn) == (0, 3, 0, 1)
    assert report.sound == "reused"


def test_editing_one_shot_re_encodes_only_its_segment_and_no_other_frame_changes(built, film_dir, tmp_path):
    report, timeline = built
    edited = build_edited(film_dir, tmp_path, "she lets the lamp go dark", "she lets the lamp burn")
    # shot 3 follows a cut: its body is one segment of 4 (shot 1, the dissolve, shot 2, shot 3)
    assert edited.picture == "encoded (1 of 4 segments)"
    assert count_frames(edited.output) == timeline["frames"]
    shot3 = next(c for c in timeline["clips"] if c["shot"] == "3")
    before, after = _frame_digests(report.output), _frame_digests(edited.output)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed and min(changed) >= shot3["start"]  # only inside the edited shot


def test_editing_a_shot_on_a_dissolve_re_encodes_its_body_and_that_transition(built, film_dir, tmp_path):
    edited = build_edited(film_dir, tmp_path, "the beam sweeps", "the beam turns")
    assert edited.picture == "encoded (2 of 4 segments)"


def _scene_joins(film: Path) -> set[str]:
    return {p.name for p in (film / "build" / "cache" / "scenes").rglob("*.mp4")}


def test_an_edit_joins_its_own_scenes_segments_and_then_the_scenes(built, film_dir, tmp_path):
    report, timeline = built
    first = _scene_joins(film_dir)
    assert len(first) == 1  # the cliff's three segments; the lamp room's one segment is its own run
    edited = build_edited(film_dir, tmp_path / "lamp", "she lets the lamp go dark", "she lets the lamp burn")
    assert _scene_joins(tmp_path / "lamp" / "copy") == first  # the cliff is not joined again
    edited = build_edited(film_dir, tmp_path / "cliff", "the beam sweeps", "the beam turns")
    assert len(_scene_joins(tmp_path / "cliff" / "copy") - first) == 1
    assert count_frames(edited.output) == timeline["frames"]
    assert _frame_digests(edited.output)[-24:] == _frame_digests(report.output)[-24:]  # the lamp room as it was


def test_release_encodes_the_picture_in_one_pass(built, film_dir, tmp_path):
    report, timeline = built
    copy = tmp_path / "copy"
    shutil.copytree(film_dir, copy)
    release = build(copy / "film.story", BuildOptions(jobs=2, release=True))
    assert release.picture == "encoded" and count_frames(release.output) == timeline["frames"]


def _frame_digests(path):
    import subprocess

    from media import ffmpeg

    out = subprocess.run([ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:v", "-f", "framemd5", "-"],
                         capture_output=True, text=True, check=True).stdout
    return [line.rsplit(",", 1)[-1].strip() for line in out.splitlines() if not line.startswith("#")]


def test_speech_longer_than_its_shot_extends_it_and_says_so(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    narrate "' + "one two three four five six " * 2 + '"\n')
    report = build(path, BuildOptions(dry_run=False, preview=True))
    assert report.notes and "lengthened" in report.notes[0]
    assert report.frames > 12
    assert count_frames(report.output) == report.frames


def test_speech_overrun_can_be_an_error_with_its_line(write_story):
    path = write_story('format 384x216 @ 12fps\noverrun error\nEXT. A - DAY\n  shot 1 wide 1s\n    narrate "' + "one two three four five six " * 2 + '"\n')
    with pytest.raises(BuildFailed) as e:
        build(path, BuildOptions())
    d = e.value.diagnostics[0]
    assert d.code == "speech-overrun" and d.span.line == 4


FAILING_FFMPEG = """#!/bin/sh
# the real ffmpeg, except that encoding a picture writes half a file and fails
for a in "$@"; do
  if [ "$a" = libx264 ]; then
    for out in "$@"; do :; done
    head -c 100000 /dev/zero > "$out"
    exit 1
  fi
done
exec "{real}" "$@"
"""


def test_a_failed_build_leaves_nothing_half_written(write_story, monkeypatch):
    from storylang.toolchain import find_ffmpeg

    fake = write_story(FAILING_FFMPEG.format(real=find_ffmpeg().path), name="ffmpeg")
    fake.chmod(0o755)
    monkeypatch.setenv("STORYLANG_FFMPEG", str(fake))
    find_ffmpeg.cache_clear()
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    narrate "Hello."\n')
    try:
        result = CliRunner().invoke(main, ["build", str(path)])
    finally:
        find_ffmpeg.cache_clear()
    assert result.exit_code == 1
    assert "Traceback" not in result.output and "encoding the picture (shot 1) failed" in result.output
    build_dir = path.parent / "build"
    leftovers = [p for p in build_dir.rglob("*") if p.is_file() and (".part" in p.name or p.name.startswith("."))]
    assert sorted(p.name for p in leftovers) == [".gitignore", ".lock"]
    assert not [p for kind in ("picture", "segments", "scenes") for p in build_dir.rglob(f"{kind}/*/*.mp4")]
    assert not (build_dir / "film" / "film.mp4").exists()


def test_media_that_is_not_what_the_script_says_is_an_error_at_its_line(write_story):
    path = write_story('format 384x216 @ 12fps\nmusic "bad.ogg"\nEXT. A - DAY\n  shot 1 wide 1s\n'
                       '    keyframes "a.png" "b.png"\n', **{"bad.ogg": b"not audio at all", "a.png": tiny_png()[:60],
                                                          "b.png": tiny_wav()})
    for command in ("check", "build"):
        result = CliRunner().invoke(main, [command, str(path)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert "film.story:2:7: error: music file \"bad.ogg\" is not an audio file" in result.output
        assert "film.story:5:15: error: keyframe image \"a.png\" is a damaged image" in result.output
        assert 'keyframe image "b.png" is not an image' in result.output
    assert not list((path.parent / "build").rglob("*.mp4")) and not list((path.parent / "build").rglob("timeline.json"))


def test_a_project_in_a_folder_with_a_quote_in_its_name_builds(tmp_path):
    folder = tmp_path / "Ida's film"
    folder.mkdir()
    (folder / "film.story").write_text('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n  > dissolve 0.5s\n'
                                       '  shot 2 close 1s\nINT. B - NIGHT\n  shot 3 wide 1s\n  shot 4 close 1s\n')
    report = build(folder / "film.story", BuildOptions(jobs=2))
    # both scenes' segments joined, then the scenes joined as the film is written: each a list of quoted paths
    assert len(list((folder / "build" / "cache" / "scenes").rglob("*.mp4"))) == 2
    assert count_frames(report.output) == report.frames == 42


def test_cli_build_prints_a_summary(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n  shot 2 close 1s\n')
    result = CliRunner().invoke(main, ["build", str(path), "--preview", "-o", str(path.parent / "out.mp4")])
    assert result.exit_code == 0, result.output
    assert "2 shots: 2 drawn" in result.output
    assert count_frames(path.parent / "out.mp4") == 24
    again = CliRunner().invoke(main, ["build", str(path), "--preview", "-o", str(path.parent / "out.mp4")])
    assert "up to date (nothing it reads has changed)" in again.output  # the stamp: nothing else ran
    other = CliRunner().invoke(main, ["build", str(path), "-o", str(path.parent / "out.mp4")])  # not --preview
    assert "2 shots: 0 drawn, 2 reused" in other.output and "picture encoded" in other.output
    path.write_text(path.read_text().replace("shot 2 close 1s", "shot 2 close 2s"))
    edited = CliRunner().invoke(main, ["build", str(path), "-o", str(path.parent / "out.mp4")])
    assert "picture encoded (1 of 2 segments)" in edited.output


def test_a_copied_project_checks_its_own_files_not_the_originals(tmp_path):
    import shutil

    first = tmp_path / "film"
    first.mkdir()
    (first / "film.story").write_text('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    action "a"\n')
    assert CliRunner().invoke(main, ["build", str(first / "film.story"), "--preview"]).exit_code == 0
    copy = tmp_path / "film-v2"
    shutil.copytree(first, copy)  # build folder and all
    same = CliRunner().invoke(main, ["build", str(copy / "film.story"), "--preview"])
    assert "up to date" in same.output and "film-v2" in same.output, same.output
    (copy / "film.story").write_text((copy / "film.story").read_text().replace('"a"', '"b"'))
    edited = CliRunner().invoke(main, ["build", str(copy / "film.story"), "--preview"])
    assert edited.exit_code == 0 and "up to date" not in edited.output, edited.output
    assert "picture encoded" in edited.output and "film-v2" in edited.output


def test_doctor_and_voices_report_the_toolchain():
    runner = CliRunner()
    doctor = runner.invoke(main, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    assert "ffmpeg" in doctor.output and "espeak-ng" in doctor.output
    voices = runner.invoke(main, ["voices", "-l", "en"])
    assert "en-us" in voices.output and "+f3" in voices.output


def test_a_dry_run_plans_and_writes_nothing(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    narrate "Hello."\n')
    result = CliRunner().invoke(main, ["build", "--dry-run", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 shot" in result.output and "(1 to render" in result.output and "(1 to speak)" in result.output
    assert sorted(p.name for p in path.parent.iterdir()) == ["film.story"]


def test_a_pan_glides_by_sub_pixel_steps_without_stepping(built):
    from storylang.render.camera import shot_views
    from storylang.film import CameraMove

    from media import gray_frames, horizontal_shift

    report, timeline = built
    clip = timeline["clips"][2]  # pan left, medium speed, ease-in-out
    n = clip["frames"]
    frames = gray_frames(report.output, clip["start"], clip["start"] + n - 1)
    h = frames[0].height
    frames = [f.crop((0, int(h * 0.3), f.width, int(h * 0.6))) for f in frames]  # the picture, not the words
    views = shot_views(tuple(CameraMove(**m) for m in clip["camera"]), n, 12, 384 / 216)
    width = frames[0].width
    expected = [-(b.ox - a.ox) * width * a.zoom for a, b in zip(views, views[1:])]
    measured = [horizontal_shift(a, b) for a, b in zip(frames, frames[1:])]
    # every frame moves by what the camera says, to a fraction of a pixel: no whole-pixel steps
    assert max(abs(m - e) for m, e in zip(measured, expected)) < 0.3, list(zip(measured, expected))
    assert min(expected) > 0 and max(expected) < 14


def test_a_fade_goes_through_black_half_out_and_half_in(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 2s\n  > fade 1s\n  shot 2 wide 2s\n')
    report = build(path, BuildOptions(jobs=2))
    luma = [ImageStat.Stat(f).mean[0] for f in gray_frames(report.output, 12, 24)]
    darkest = min(range(len(luma)), key=luma.__getitem__)
    assert darkest == 6 and luma[6] < 8
    for i in range(1, 6):  # as far down as up, step by step
        assert abs(luma[6 - i] - luma[6 + i]) < 4


def test_a_cards_words_stay_in_place_while_the_camera_moves_and_cues_change_at_their_frame(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. HARBOUR - DAY\n  shot 7 medium on MARA 3s\n    camera pan left fast\n'
                       '    action "she walks"\n  shot 8 medium on MARA 2s\n    action "she walks"\n'
                       '    at 1s "she stops"\ncharacter MARA\n  look "x"\n')
    report = build(path, BuildOptions(jobs=2))
    frames = gray_frames(report.output, 0, 59)
    h, w = frames[0].height, frames[0].width

    def diff(a, b, box):
        return ImageStat.Stat(ImageChops.difference(a.crop(box), b.crop(box))).mean[0]

    top, picture, cue = (0, 0, w, int(h * 0.12)), (0, int(h * 0.3), w, int(h * 0.6)), (0, int(h * 0.7), w, int(h * 0.86))
    assert diff(frames[1], frames[34], picture) > 3  # the camera moved the picture...
    assert diff(frames[1], frames[34], top) < 1.5  # ...but not the heading and the shot number
    assert diff(frames[36 + 10], frames[36 + 11], cue) < 0.5 < 3 < diff(frames[36 + 11], frames[36 + 12], cue)


def test_the_film_opens_on_its_title_card_and_closes_on_its_end_card(write_story):
    path = write_story('title "Last Ferry" 1s\nauthor "Ada"\nend "The End" 2s\nformat 384x216 @ 12fps\n'
                       'EXT. A - DAY\n  shot 1 wide 1s\n')
    report = build(path, BuildOptions(jobs=2))
    timeline = json.loads(report.timeline.read_text())
    assert [(c["shot"], c["start"], c["frames"]) for c in timeline["clips"]] == [("#title", 0, 12), ("1", 12, 12),
                                                                                 ("#end", 24, 24)]
    assert report.frames == count_frames(report.output) == 48
    luma = [ImageStat.Stat(f).mean[0] for f in gray_frames(report.output, 0, 47)]
    assert luma[5] < 30 and luma[40] < 30 and luma[18] > 60  # dark cards with light words around the shot


def test_a_huge_word_in_an_action_builds_a_card(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    action "' + "x" * 19_000 + '"\n')
    result = CliRunner().invoke(main, ["build", str(path), "--preview"])
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output[-500:]
    path.write_text('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    action "' + "x" * 1_200_000 + '"\n')
    result = CliRunner().invoke(main, ["build", str(path), "--preview"])
    assert result.exit_code == 1 and "film.story:4:1: error: line 4 is longer than 20,000 characters" in result.output


def test_one_shot_is_built_alone_beside_the_film(tmp_path):
    """`build --shot 2`: a short film of the shot alone (and the shot it continues), in
    build/<film>/shots/; the film's own files are left alone and its next build reuses the render."""
    (tmp_path / ".git").mkdir()
    script = tmp_path / "film.story"
    script.write_text(FILM.replace('  music "theme.ogg" volume -18dB fade in 1s duck -12dB\n', "")
                      .replace("  shot 3 medium on MARA 2s", "  > continue\n  shot 3 medium on MARA 2s", 1))
    runner = CliRunner()
    one = runner.invoke(main, ["build", str(script), "--shot", "2"])
    assert one.exit_code == 0, one.output
    clip = tmp_path / "build" / "film" / "shots" / "shot-2" / "film-shot-2.mp4"
    assert count_frames(clip) == 24 and audio_seconds(clip) > 0.5  # 2 s at 12 fps, and MARA's line
    assert not (tmp_path / "build" / "film" / "film.mp4").exists()
    chained = runner.invoke(main, ["build", str(script), "--shot", "3"])  # shot 3 continues shot 2
    timeline = json.loads((tmp_path / "build" / "film" / "shots" / "shot-3" / "timeline.json").read_text())
    assert chained.exit_code == 0 and [c["shot"] for c in timeline["clips"] if c.get("shot")] == ["2", "3"]
    whole = runner.invoke(main, ["build", str(script)])
    assert whole.exit_code == 0 and "2 reused" in whole.output
    wrong = runner.invoke(main, ["build", str(script), "--shot", "22"])
    assert wrong.exit_code == 1 and "--shot 22: the film has no such shot" in wrong.output
    assert "did you mean 2?" in wrong.output and "Traceback" not in wrong.output
