"""No control character from a script or a server reaches a terminal, a subtitle or a tag alive."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, strategies as st

from hostile import no_traceback, run
from storylang.diagnostics import Diagnostic, Span, inert, render_json, render_text
from storylang.timeline import Subtitle, Timeline, to_srt, to_vtt

LIVE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
HOSTILE = ["\x1b]0;owned\x07", "\x1b]52;c;cm0gLXJmIH4=\x07", "\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "\x07",
           "\x9b31m", "\x1b[2J", "\x00"]


@given(st.text())
def test_inert_text_holds_no_control_character(text):
    assert not LIVE.search(inert(text)) and "\n" not in inert(text)
    assert not LIVE.search(inert(text, newlines=True))


def test_inert_shows_what_it_escaped():
    assert inert("a\x1bb\x9bc\x07") == "a\\x1bb\\x9bc\\x07"


@pytest.mark.parametrize("bad", HOSTILE)
def test_a_control_character_in_a_script_is_an_error_at_its_place_shown_escaped(write_story, bad):
    path = write_story(f'EXT. A - DAY\n  shot 1 wide 1s\n    action "x{bad}y"\n')
    result = run("check", path)
    assert result.exit_code == 1
    no_traceback(result)
    what = "this file is not text (it contains a NUL byte)" if bad == "\x00" else \
        "this script holds the control character U+"
    assert f"film.story:3:14: error: {what}" in result.output
    assert not LIVE.search(result.output)
    if bad == "\x00":
        return
    caret = result.output.splitlines()
    line = next(i for i, s in enumerate(caret) if s.startswith("3 | "))
    assert caret[line + 1].index("^") == caret[line].index("\\", 8)  # under the escape, where the character was


@pytest.mark.parametrize("bad", HOSTILE)
def test_shot_names_and_messages_are_inert_in_every_command(write_story, bad):
    # a shot name from a script can only hold what the script holds: check refuses it above; the
    # renderers of messages are inert whatever they are given (a server's error text, say)
    d = Diagnostic(severity="error", code="x", message=f"server says {bad}", file=f"f{bad}.story",
                   span=Span(line=1, column=2, end_line=1, end_column=3), hint=f"hint {bad}")
    text = render_text([d], {f"f{bad}.story": f"a{bad}b"})
    assert not LIVE.search(text)
    assert not re.search(r"[\x7f-\x9f]", render_json([d]))


def test_subtitles_and_tags_are_inert():
    t = Timeline.model_construct(fps_num=24, fps_den=1, subtitles=[
        Subtitle(start=0, end=24, text="MARA: hi\x1b]0;x\x07 \x9b\n\nthere")])
    for text in (to_srt(t), to_vtt(t)):
        assert not LIVE.search(text)
        assert "\n\nthere" not in text and "there" in text
    from storylang.assemble import _meta_escape

    assert not LIVE.search(_meta_escape("title\x1b]0;x\x07"))
