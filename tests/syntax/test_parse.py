"""The parser reads what writers write and turns anything else into diagnostics."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storylang.syntax import tree as t
from storylang.syntax.parse import decode_source, parse_text

DEMO = '''title "The Lighthouse Keeper"
format 1280x720 @ 24fps
model "dreamshaper_8.safetensors"  sampler dpmpp_2m_sde  steps 28  cfg 5.5

character MARA
  look "woman in her sixties"  // her look
  voice "en-us+f3" rate 150

EXT. LIGHTHOUSE CLIFF - NIGHT
  setting "white lighthouse"

  shot 12A wide on MARA and OLD TOM 5s
    camera push in slow
    MARA (quietly): Not tonight.
  > dissolve 0.5s
'''


def parse_ok(text):
    tree, diags = parse_text(text, "film.story")
    assert tree is not None, diags
    return tree


def test_a_script_becomes_typed_nodes_in_source_order():
    tree = parse_ok(DEMO)
    kinds = [type(i).__name__ for i in tree.items]
    assert kinds == ["SettingsLine", "SettingsLine", "SettingsLine", "Character", "Scene"]
    model_line = tree.items[2]
    assert [s.key for s in model_line.settings] == ["model", "sampler", "steps", "cfg"]
    assert model_line.settings[0].values[0].text == "dreamshaper_8.safetensors"


def test_a_shot_header_carries_number_framing_cast_and_duration():
    shot = parse_ok(DEMO).items[4].body[1]
    assert isinstance(shot, t.Shot)
    assert shot.number == "12A"
    assert [v.text for v in shot.framing] == ["wide"]
    assert [c.name for c in shot.cast] == ["MARA", "OLD TOM"]
    assert shot.duration.text == "5s"
    assert (shot.span.line, shot.span.column) == (12, 3)


def test_dialogue_keeps_speaker_parenthetical_and_text():
    shot = parse_ok(DEMO).items[4].body[1]
    line = shot.body[1]
    assert isinstance(line, t.Dialogue)
    assert (line.speaker, line.parenthetical, line.text) == ("MARA", "quietly", "Not tonight.")


def test_a_transition_after_a_shot_body_belongs_to_the_scene():
    scene = parse_ok(DEMO).items[4]
    assert isinstance(scene.body[2], t.Transition)
    assert [v.text for v in scene.body[2].values] == ["dissolve", "0.5s"]


def test_comments_are_kept_with_their_positions():
    tree = parse_ok("// opening\ntitle \"x\"  // trailing\n")
    assert [(c.text, c.own_line, c.span.line) for c in tree.comments] == [
        ("// opening", True, 1),
        ("// trailing", False, 2),
    ]


def test_string_escapes_are_decoded():
    tree = parse_ok('title "say \\"hi\\" \\\\ now"\n')
    assert tree.items[0].settings[0].values[0].text == 'say "hi" \\ now'


def test_long_text_may_span_lines():
    tree = parse_ok('EXT. A - DAY\n  shot 1 wide 2s\n    narrate """one\n      two"""\n')
    narr = tree.items[0].body[0].body[0].settings[0]
    assert narr.values[0].text == "one\n      two"


def test_a_template_name_may_be_a_key_word():
    tree = parse_ok("template motion  steps 20\n")
    assert [(s.key, [v.text for v in s.values]) for s in tree.items[0].settings] == [
        ("template", ["motion"]),
        ("steps", ["20"]),
    ]


def test_crlf_bom_and_tabs_are_read():
    data = "\ufefftitle \"x\"\r\nEXT. A - DAY\r\n\tshot 1 wide 2s\r\n".encode()
    text, diags = decode_source(data, "f.story")
    assert not diags
    assert parse_ok(text).items[1].body[0].number == "1"


def test_independent_syntax_errors_are_all_reported():
    text = 'stepz 28\ntitle "ok"\ncharacter mara\nEXT. A - DAY\n  shot 1 wide 2s\n    acton "x"\n'
    tree, diags = parse_text(text, "f.story")
    assert tree.recovered and [type(i).__name__ for i in tree.items] == ["SettingsLine", "Scene"]
    assert [(d.span.line, d.code) for d in diags] == [
        (1, "unknown-statement"),
        (3, "syntax"),
        (6, "unknown-statement"),
    ]


def test_binary_junk_is_refused_with_a_position():
    text, diags = decode_source(b"title \"x\"\n\x00\x01\x02", "f.story")
    assert text is None
    assert diags[0].code == "not-text" and diags[0].span.line == 2


def test_invalid_utf8_is_refused_with_a_position():
    text, diags = decode_source(b'title "caf\xe9"\n', "f.story")
    assert text is None
    assert (diags[0].code, diags[0].span.line, diags[0].span.column) == ("not-utf8", 1, 11)


def test_empty_file_is_an_empty_script():
    assert parse_ok("").items == ()
    assert parse_ok("\n\n   \n// only a comment\n").items == ()


def test_deep_nesting_is_a_diagnostic_not_a_crash():
    text = "".join(" " * i + "shot\n" for i in range(0, 400, 2))
    tree, diags = parse_text(text, "f.story")
    assert (tree is None or tree.recovered) and diags


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_any_text_gives_a_tree_or_diagnostics(text):
    tree, diags = parse_text(text, "f.story")
    assert (tree is not None and not tree.recovered) or diags
    for d in diags:
        assert d.span is not None and d.span.line >= 1 and d.span.column >= 1


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_any_bytes_give_text_or_a_diagnostic(data):
    text, diags = decode_source(data, "f.story")
    if text is None:
        assert diags and diags[0].severity == "error"
    else:
        tree, diags = parse_text(text, "f.story")
        assert (tree is not None and not tree.recovered) or diags


ALPHABET = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(["title", "setting", "look", "MARA:", "shot", "EXT.", ">", "//", '"', "\n", "  ",
                                 "5s", "on", "camera", "push", "in", "0.5s", "12A", "@", "x", "INT.", "(", ")"]),
                max_size=40))
def test_near_miss_token_soup_never_crashes(words):
    tree, diags = parse_text(" ".join(words), "f.story")
    assert (tree is not None and not tree.recovered) or diags
