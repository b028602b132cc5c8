"""Parsing again after an edit gives what parsing the whole file gives: the same tree, positions,
comments and diagnostics, whatever the edit (lines added above, items broken, long texts opened)."""

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storylang.syntax.incremental import Reparser, split
from storylang.syntax.parse import parse_text

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.story"))
TEXTS = [p.read_text(encoding="utf-8") for p in EXAMPLES]

# What a writer types: characters that open and close strings and long texts, start comments,
# indent, cut lines, and whole lines that start or break items.
FRAGMENTS = ['"', '"""', "//", "\n", "\n  ", "\n    ", "x", " ", "\t", "(", ")", ":", "\\q",
             "EXT. DOCK - DAY\n", "character NEW\n", "  shot wide 2s\n", "    MARA: hi\n",
             "> cut\n", '  prompt """\nfree text\n"""\n', "steps 3\n", "    camera pan left\n"]


def whole(text):
    return dumped(*parse_text(text, "film.story"))


def again(reparser, text):
    return dumped(*reparser.parse(text, "film.story"))


def dumped(tree, diags):
    """Tree and diagnostics as plain data. After a syntax error, the lines set aside no longer
    count in the span of the statement before them, whose end runs over the line breaks after it
    (a whole parse ends it after them): the only difference allowed, so those ends are left out."""
    out = tree.model_dump() if tree else None
    if out and out["recovered"]:
        forget_line_break_ends(out)
    return out, [d.model_dump() for d in diags]


def forget_line_break_ends(value):
    if isinstance(value, dict):
        if value.keys() == {"line", "column", "end_line", "end_column"} and value["end_column"] == 1:
            value["end_line"] = None
        for v in value.values():
            forget_line_break_ends(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            forget_line_break_ends(v)


def edit(text, at, cut, fragment):
    at = at % (len(text) + 1)
    return text[:at] + fragment + text[at + cut:]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(range(len(TEXTS))),
       st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 40), st.sampled_from(FRAGMENTS)),
                min_size=1, max_size=6))
def test_a_parse_after_edits_equals_a_whole_parse(which, edits):
    reparser = Reparser()
    text = TEXTS[which]
    assert again(reparser, text) == whole(text)
    for at, cut, fragment in edits:
        text = edit(text, at, cut, fragment)
        assert again(reparser, text) == whole(text)


def parses(monkeypatch):
    """The lines at which pieces are parsed from here on (the rest is taken from memory)."""
    from storylang.syntax import incremental

    lines = []
    real = incremental._parse_piece
    monkeypatch.setattr(incremental, "_parse_piece", lambda before, chunk, line, file:
                        lines.append(line) or real(before, chunk, line, file))
    return lines


def test_an_edit_parses_only_its_item_and_the_one_after(monkeypatch):
    reparser = Reparser()
    text = TEXTS[-1]
    reparser.parse(text, "film.story")
    parsed = parses(monkeypatch)
    at = text.index("\nEXT.") + 1  # type into a scene heading
    edited = text[:at + 4] + "x" + text[at + 4:]
    reparser.parse(edited, "film.story")
    line = text.count("\n", 0, at) + 1
    assert parsed[0] == line and len(parsed) <= 2 < len(split(edited))


def test_lines_added_above_move_the_kept_items_down(monkeypatch):
    reparser = Reparser()
    text = TEXTS[-1]
    first, _ = reparser.parse(text, "film.story")
    parsed = parses(monkeypatch)
    moved = text.replace("\n", "\n// a note\n\n", 1)
    tree, _ = reparser.parse(moved, "film.story")
    assert tree.model_dump() == whole(moved)[0]
    assert len(parsed) <= 2 < len(split(moved))
    assert tree.items[-1].span.line == first.items[-1].span.line + 2


def test_a_long_text_keeps_its_column_zero_lines_in_its_item():
    text = 'character MARA\n  look """\nEXT. NOT A HEADING\n"""\nEXT. DOCK - DAY\n'
    assert [line for line, _ in split(text)] == [1, 5]
    assert [line for line, _ in split(text + "EXT. PIER - DAY\n  \"\"\" but not here\nEXT. END - DAY\n")] == [1, 8]


def test_a_paste_of_many_broken_lines_stops_at_the_error_limit(monkeypatch):
    """Each broken piece is parsed after the broken ones before it, so the pieces stop being
    parsed one by one at the limit of syntax errors, and the whole file gives the verdict."""
    reparser = Reparser()
    good = "".join(f"EXT. PLACE {i} - DAY\n  shot {i} wide 1s\n" for i in range(200))
    reparser.parse(good, "film.story")
    parsed = parses(monkeypatch)
    pasted = good + "".join(f"broken{i} ?\n" for i in range(150))
    assert again(reparser, pasted) == whole(pasted)
    assert len(parsed) <= 27
