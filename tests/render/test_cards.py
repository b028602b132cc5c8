"""Where a spoken line shows on its card: while it is the shot's latest line, and only while the
shot is fully on screen (not over the dissolves and wipes into and out of it)."""

from storylang.render.cards import line_spans


def test_a_cut_shot_shows_each_line_until_the_next_one():
    assert line_spans(((6, 20), (40, 10)), 96) == [(6, 40), (40, 96)]


def test_a_line_spoken_during_the_way_in_appears_once_the_shot_is_in():
    assert line_spans(((6, 20),), 96, enter=12) == [(12, 96)]


def test_a_line_said_before_the_way_out_leaves_when_the_shot_starts_to_go():
    assert line_spans(((6, 20),), 96, enter=0, leave=84) == [(6, 84)]


def test_a_line_still_spoken_on_the_way_out_stays_to_the_end():
    assert line_spans(((6, 80),), 96, enter=0, leave=84) == [(6, 96)]


def test_a_line_that_starts_on_the_way_out_shows_from_its_start():
    assert line_spans(((6, 20), (88, 6)), 96, enter=12, leave=84) == [(12, 84), (88, 96)]


def test_a_line_replaced_before_the_shot_is_in_never_shows():
    assert line_spans(((2, 3), (8, 20)), 96, enter=12) == [(12, 12), (12, 96)]


def test_a_shot_never_fully_on_screen_shows_lines_as_spoken():
    assert line_spans(((3, 4),), 24, enter=12, leave=12) == [(3, 24)]


def test_words_too_long_for_their_place_end_in_an_ellipsis_inside_the_width():
    from PIL import Image, ImageDraw

    from storylang.render.cards import _fit, font

    d = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    f = font(30, True)
    text = "A " + "very " * 40 + "long title"
    lines = _fit(d, text, f, 500, 3)
    assert len(lines) == 3 and lines[-1].endswith("…")
    assert all(d.textlength(line, font=f) <= 500 for line in lines)
    assert _fit(d, "short", f, 500, 3) == ["short"]
    one = _fit(d, "EXT. A VERY LONG SCENE HEADING THAT RUNS ON AND ON - NIGHT", f, 300)
    assert len(one) == 1 and one[0].endswith("…") and d.textlength(one[0], font=f) <= 300


def test_check_warns_at_each_text_the_card_must_cut(write_story):
    from click.testing import CliRunner

    from storylang.cli import main

    long = "the keeper climbs the stair past every window " * 3
    path = write_story(f'title "The Extraordinarily Long and Winding Tale of the Keeper Who Counted {long}" 2s\n'
                       'format 640x360 @ 12fps\n'
                       'INT. A VERY LONG SCENE HEADING THAT GOES ON AND ON ABOUT THE LIGHTHOUSE KEEPER - NIGHT\n'
                       '  shot 1 wide 2s\n    action "The keeper climbs."\n'
                       f'    narrate "{long * 2}"\n'
                       '  shot 2 wide 2s\n    action "Short."\n    narrate "Short."\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 0, result.output
    warned = [ln.split(": warning: ")[0].split("film.story:")[1] for ln in result.output.splitlines()
              if "animatic's card" in ln]
    assert warned == ["1:7", "3:1", "6:5"], result.output
    assert "the title card's text is too long for the animatic's card" in result.output
