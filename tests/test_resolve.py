"""The resolver applies the defaults cascade, checks names and turns time into frames."""

from conftest import tiny_png
from storylang.resolve import derive_seed, resolve_file, round_frames
from fractions import Fraction

HEADER = '''title "T"
format 1280x720 @ 24fps
steps 20  cfg 6
narrator "en-gb" rate 150

character MARA
  look "silver braid"
  lora "mara.safetensors" 0.8
  seed 1234
  voice "en-us+f3" rate 150

'''


def resolve(write_story, body, **files):
    film, diags, _ = resolve_file(write_story(HEADER + body, **files))
    errors = [d for d in diags if d.severity == "error"]
    assert film is not None, errors
    return film


def test_settings_cascade_from_film_to_scene_to_shot(write_story):
    film = resolve(write_story, '''EXT. A - DAY
  steps 30
  shot 1 wide 2s
  shot 2 wide 2s
    steps 40  cfg 9
INT. B - NIGHT
  shot 3 wide 2s
''')
    assert [s.render.steps for s in film.shots] == [30, 40, 20]
    assert [s.render.cfg for s in film.shots] == [6, 9, 6]


def test_durations_become_whole_frames_rounding_half_up(write_story):
    film = resolve(write_story, "EXT. A - DAY\n  shot 1 wide 2.5s\n  shot 2 wide 72f\n  shot 3 wide 1021ms\n")
    assert [s.frames for s in film.shots] == [60, 72, 25]
    assert round_frames(Fraction(1, 48), Fraction(24)) == 1  # half a frame rounds up


def test_film_length_is_shots_minus_transition_overlaps(write_story):
    film = resolve(write_story, "EXT. A - DAY\n  shot 1 wide 5s\n  > dissolve 0.5s\n  shot 2 wide 5s\n  > wipe left 12f\n  shot 3 wide 5s\n")
    from storylang.timing import time_film

    assert time_film(film, {}).frames == film.title_frames + 3 * 120 - 12 - 12 and film.title_frames == 72


def test_inserting_a_shot_changes_no_other_shots_seed(write_story, tmp_path):
    body = "EXT. A - DAY\n  shot 12 wide on MARA 2s\n{}  shot 13 wide 2s\n  shot 14 close on MARA 2s\n"
    before = resolve(write_story, body.format(""))
    after = resolve(write_story, body.format("  shot 12A close 2s\n"))
    seeds_before = {s.id: s.render.seed for s in before.shots}
    seeds_after = {s.id: s.render.seed for s in after.shots}
    assert {k: seeds_after[k] for k in seeds_before} == seeds_before
    assert "12A" in seeds_after


def test_a_shot_seed_overrides_derivation(write_story):
    film = resolve(write_story, "EXT. A - DAY\n  shot 1 wide 2s\n    seed 7\n  shot 2 wide 2s\n")
    assert film.shots[0].render.seed == 7
    assert film.shots[1].render.seed == derive_seed(0, "shot", "2") != 7  # the others still derive theirs


def test_character_loras_join_the_shots_they_appear_in(write_story):
    film = resolve(write_story, 'lora "style.safetensors" 0.5\nEXT. A - DAY\n  shot 1 wide on MARA 2s\n  shot 2 wide 2s\n')
    assert [l.file for l in film.shots[0].render.loras] == ["style.safetensors", "mara.safetensors"]
    assert [l.file for l in film.shots[1].render.loras] == ["style.safetensors"]


def test_lines_take_their_speakers_voice(write_story):
    film = resolve(write_story, 'EXT. A - DAY\n  shot 1 close on MARA 4s\n    narrate "Once."\n    MARA (low): Not tonight.\n')
    narr, line = film.shots[0].lines
    assert (narr.kind, narr.voice.id, narr.voice.rate) == ("narration", "en-gb", 150)
    assert (line.speaker, line.parenthetical, line.voice.id) == ("MARA", "low", "en-us+f3")


def test_camera_language_is_canonical(write_story):
    film = resolve(write_story, "EXT. A - DAY\n  shot 1 wide 2s\n    camera dolly in fast 1.5x ease-out and pan left\n")
    push, pan = film.shots[0].camera
    assert (push.move, push.direction, push.speed, push.amount, push.easing) == ("push", "in", "fast", 50.0, "ease-out")
    assert (pan.move, pan.direction, pan.amount) == ("pan", "left", 20.0)


def test_paths_resolve_relative_to_the_file_naming_them(write_story, tmp_path):
    (tmp_path / "bible").mkdir()
    (tmp_path / "bible" / "refs").mkdir()
    (tmp_path / "bible" / "refs" / "ida.png").write_bytes(tiny_png())
    (tmp_path / "bible" / "cast.story").write_text('character IDA\n  reference "refs/ida.png"\n')
    film = resolve(write_story, 'include "bible/cast.story"\nEXT. A - DAY\n  shot 1 close on IDA 2s\n')
    assert film.character("IDA").reference.file == "bible/refs/ida.png"
    assert film.files == ("film.story", "bible/cast.story")


def test_fade_in_and_out_of_black_frame_the_film(write_story):
    film = resolve(write_story, "> fade from black 1s\nEXT. A - DAY\n  shot 1 wide 3s\n> fade to black 12f\n")
    assert (film.fade_in, film.fade_out) == (24, 12)
    assert film.shots[0].transition is None


def test_every_independent_error_is_reported(write_story):
    path = write_story(HEADER + "EXT. A - DAY\n  shot 1 wdie on MRAA 3s\n  shot 2 wide 3s\n    camera zoom sideways\n")
    film, diags, _ = resolve_file(path)
    assert film is None
    assert [d.code for d in diags if d.severity == "error"] == ["unknown-framing", "unknown-character", "unknown-camera-move"]


def test_examples_resolve_without_errors():
    from pathlib import Path

    for path in sorted((Path(__file__).parent.parent / "examples").glob("*.story")):
        film, diags, _ = resolve_file(path)
        assert film is not None, (path, diags)
        assert not [d for d in diags if d.severity == "error"]


def test_a_shot_is_known_by_its_number_or_else_its_name(write_story):
    film = resolve(write_story, 'EXT. A - DAY\n  shot 3 "the beam" wide 2s\n  shot "reaction" close 2s\n  shot close 2s\n')
    assert [(s.id, s.number, s.name) for s in film.shots][:2] == [("3", "3", "the beam"), ("reaction", None, "reaction")]
    assert film.shots[2].id.startswith("~")


def test_syntax_errors_and_other_mistakes_are_reported_together_without_echoes(write_story):
    path = write_story('character mara\n  look "x"\nEXT. A - DAY\n  shot 1 close on MARA 2s\n    camera pan lfet\n'
                       '  shot 2 wide 2s\n    acton "x"\n')
    film, diags, _ = resolve_file(path)
    assert film is None
    # the broken declaration of MARA is reported once, not again as "unknown character MARA"
    assert sorted((d.span.line, d.code) for d in diags) == [(1, "syntax"), (5, "unknown-camera-move"), (7, "unknown-statement")]
