"""The edit list places shots and lines on integer frames, deterministically."""

import pytest

from conftest import tiny_wav

from storylang.diagnostics import StoryError
from storylang.resolve import resolve_file
from storylang.timeline import ShotPicture, SpokenLine, build_timeline, line_key, to_srt, to_vtt

SCRIPT = '''format 1280x720 @ 24fps
character MARA
  voice "en-us"
EXT. A - DAY
  music "m.ogg" fade in 1s
  shot 1 wide 3s
    narrate "One."
    MARA: Two.
  > dissolve 12f
  shot 2 wide 2s
INT. B - DAY
  music off
  shot 3 wide 2s
'''


def timeline_for(write_story, script=SCRIPT, seconds=1.0):
    film, diags, _ = resolve_file(write_story(script, **{"m.ogg": tiny_wav()}))
    assert film, diags
    sources = {s.id: ShotPicture("still", (f"{s.id}.png",)) for s in film.shots}
    spoken = {line_key(s, i): SpokenLine(file=f"{s.id}-{i}.wav", seconds=seconds)
              for s in film.shots for i, _ in enumerate(s.lines)}
    return build_timeline(film, sources, spoken)


def test_clips_follow_each_other_minus_transitions(write_story):
    t, notes = timeline_for(write_story)
    assert [(c.start, c.frames) for c in t.clips] == [(0, 72), (60, 48), (108, 48)]
    assert t.frames == 156 and notes == []


def test_lines_are_placed_in_order_with_a_lead_in_and_a_gap(write_story):
    t, _ = timeline_for(write_story)
    assert [(s.start, s.frames, s.speaker) for s in t.speech] == [(6, 24, None), (36, 24, "MARA")]
    assert [(x.start, x.end, x.text) for x in t.subtitles] == [(6, 30, "One."), (36, 60, "MARA: Two.")]


def test_music_plays_from_its_scene_until_music_off_and_chapters_follow_scenes(write_story):
    t, _ = timeline_for(write_story)
    assert [(m.start, m.end, m.fade_in) for m in t.music] == [(0, 108, 24)]
    assert [(c.title, c.start, c.end) for c in t.chapters] == [("EXT. A - DAY", 0, 108), ("INT. B - DAY", 108, 156)]


def test_long_speech_extends_its_shot_and_later_shots_move(write_story):
    t, notes = timeline_for(write_story, seconds=2.0)
    assert t.clips[0].frames == 6 + 48 + 6 + 48 + 6 and t.clips[0].extended == 114 - 72
    assert t.clips[1].start == 114 - 12
    assert "lengthened" in notes[0]


def test_overrun_error_stops_with_the_shots_line(write_story):
    with pytest.raises(StoryError) as e:
        timeline_for(write_story, SCRIPT.replace("format", "overrun error\nformat"), seconds=2.0)
    assert e.value.diagnostics[0].span.line == 7


def test_the_edit_list_json_is_deterministic(write_story):
    a, _ = timeline_for(write_story)
    b, _ = timeline_for(write_story)
    assert a.to_json() == b.to_json()
    assert to_srt(a).startswith("1\n00:00:00,250 --> 00:00:01,250\nOne.\n")
    assert "00:00:01.500 --> 00:00:02.500\nMARA: Two." in to_vtt(a)
