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
