"""Fountain both ways: the spec's constructs imported into scripts that check, every example
exported and imported back to the same film, and generated scripts round-tripped."""

import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from storylang.cli import main
from storylang.fountain import FountainError, import_text, plain, to_fountain
from storylang.resolve import resolve_file
from storylang.syntax.format import quote
from storylang.syntax.parse import parse_text

from conftest import EXAMPLES


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def meaning(film) -> dict:
    """The resolved film without where things were written."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in ("where", "files", "script")}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return strip(film.model_dump(mode="json"))


def resolved(text: str, folder: Path, name: str = "film.story"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    film, diags, _ = resolve_file(path, name)
    return film, [d for d in diags if d.severity == "error"]


def round_trip(text: str, folder: Path) -> str:
    tree, diags = parse_text(text, "film.story")
    assert tree is not None
    return import_text(to_fountain(tree), "film.fountain", "back.story")


# Written from the syntax page of fountain.io: each construct the spec names.
SPEC = '''Title:
    _**BRICK & STEEL**_
    _**FULL RETIRED**_
Credit: Written by
Author: Stu Maschwitz
Source: Story by KTM
Draft date: 1/20/2012
Contact:
    Next Level Productions
    1588 Mission Dr.

# ACT I

= Brick and Steel meet again.

EXT. BRICK'S PATIO - DAY #1#

A gorgeous day.  The sun is shining.  But BRICK BRADDOCK, retired police detective, is sitting quietly, contemplating -- something.

The SCREEN DOOR slides open and DICK STEEL, his former partner and fellow retiree, emerges with two cold beers.

STEEL
Beer's ready!

BRICK
Are they cold?

STEEL
Does a bear crap in the woods?

Steel sits.  They laugh at each other.

INT. TRAILER HOME - DAY #1A#

This is the home of THE BOY BAND, AKA DAN and JACK.  They too are drinking beer. [[Check the band's name.]]

DAN
Then let's retire them.
_Permanently_.

JACK
(whispering)
Aww, c'mon.
(beat)
Not again.

STEEL (V.O.)
They never saw us coming.

BRICK (CONT'D)
Screw retirement.

STEEL ^
Screw retirement.

CUT TO:

.SNIPER SCOPE POV

From what seems like only INCHES AWAY.  _Steel's face FILLS the *Leupold Mark 4* scope_.

@McCLANE
Yippie ki-yay!

!BRICK AND STEEL SHARE A LOOK.

I/E. CAR - NIGHT

/* They drive for an hour.

Nobody speaks. */

~Willy Wonka! Willy Wonka!

===

EST. CITY - DAWN

The sun rises.

> Burn to white.

EXT. HARBOUR - DUSK

The end of it.

FADE TO BLACK.

> THE END <
'''


def test_the_specs_constructs_import_into_a_script_that_checks(tmp_path):
    story = import_text(SPEC, "brick.fountain", "brick.story")
    film, errors = resolved(story, tmp_path, "brick.story")
    assert not errors, errors
    assert film.title == "BRICK & STEEL FULL RETIRED" and film.author == "Stu Maschwitz"
    assert film.end == "THE END"
    assert [s.heading for s in film.scenes] == ["EXT. BRICK'S PATIO - DAY", "INT. TRAILER HOME - DAY",
                                                "INT. SNIPER SCOPE POV", "I/E. CAR - NIGHT", "EST. CITY - DAWN",
                                                "EXT. HARBOUR - DUSK"]
    assert {c.name for c in film.characters} == {"STEEL", "BRICK", "DAN", "JACK", "MCCLANE"}
    lines = [(ln.speaker, ln.parenthetical, ln.text) for s in film.shots for ln in s.lines]
    assert ("DAN", None, "Then let's retire them. Permanently.") in lines
    assert ("JACK", "whispering", "Aww, c'mon.") in lines and ("JACK", "beat", "Not again.") in lines
    assert ("STEEL", "V.O.", "They never saw us coming.") in lines
    assert ("BRICK", None, "Screw retirement.") in lines and ("MCCLANE", None, "Yippie ki-yay!") in lines
    first = film.shots[0]
    assert first.framing == "wide" and first.number == "1" and "BRICK" in first.cast
    assert first.action.startswith("A gorgeous day. The sun is shining.")
    trailer = next(s for s in film.shots if s.action.startswith("This is the home"))
    assert "[[" not in trailer.action and set(trailer.cast) >= {"DAN", "JACK"}
    scope = next(s for s in film.shots if "scope" in s.action)
    assert scope.action == "From what seems like only INCHES AWAY. Steel's face FILLS the Leupold Mark 4 scope."
    assert any(s.action == "BRICK AND STEEL SHARE A LOOK." for s in film.shots)
    assert film.fade_out > 0
    for text in ('note "scene 1A"', 'note "Check the band\'s name."', "// # ACT I", "// = Brick and Steel meet again.",
                 "// They drive for an hour.", "// Draft Date: 1/20/2012",
                 'note "dual dialogue in the screenplay: spoken one after the other"',
                 "note \"guess: the heading 'SNIPER SCOPE POV' names no INT. or EXT.: INT. was guessed\"",
                 "// Burn to white.: not a transition storylang knows (a cut)"):
        assert text in story, text
    # a shot's length comes from reading its words; every guess is a note
    assert all(2 <= s.frames / 24 <= 10 for s in film.shots)
    assert story.count('note "guess:') >= len(film.shots)


def test_import_writes_a_formatted_script_and_says_what_it_guessed(tmp_path):
    (tmp_path / "brick.fountain").write_text(SPEC)
    result = run("import", tmp_path / "brick.fountain", "-o", tmp_path / "brick.story")
    assert result.exit_code == 0, result.output
    assert "6 scenes" in result.output and "guesses left as notes" in result.output
    assert run("fmt", "--check", tmp_path / "brick.story").exit_code == 0
    assert run("check", tmp_path / "brick.story").exit_code == 0
    again = run("import", tmp_path / "brick.fountain", "-o", tmp_path / "brick.story")
    assert again.exit_code == 1 and "exists" in again.output


@pytest.mark.parametrize("name", sorted(p.stem for p in EXAMPLES.glob("*.story")))
def test_every_example_exports_to_fountain_and_imports_back_to_the_same_film(tmp_path, name):
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    shutil.copytree(EXAMPLES, tmp_path / "back", ignore=shutil.ignore_patterns("build"))
    script = tmp_path / "ex" / f"{name}.story"
    fountain = tmp_path / f"{name}.fountain"
    result = run("export", script, "--format", "fountain", "-o", fountain)
    assert result.exit_code == 0, result.output
    assert "/* storylang" in fountain.read_text()
    # imported where the original was (its includes and media beside it), under the same name
    back = tmp_path / "back" / f"{name}.story"
    back.unlink()
    result = run("import", fountain, "-o", back)
    assert result.exit_code == 0, result.output
    original, _, _ = resolve_file(script, script.name)
    again, diags, _ = resolve_file(back, back.name)
    assert again is not None, diags
    assert meaning(again) == meaning(original)


def test_the_screenplay_shows_what_a_screenplay_shows_and_hides_the_rest(tmp_path):
    tree, _ = parse_text((EXAMPLES / "lighthouse.story").read_text(), "lighthouse.story")
    text = to_fountain(tree)
    from fountain_parser import parse

    shown = [e for e in parse(text).elements if type(e).__name__ != "Boneyard"
             and not (type(e).__name__ == "Action" and e.text.startswith("[["))]  # the script's comments
    kinds = [type(e).__name__ for e in shown]
    assert kinds[:3] == ["Transition", "SceneHeading", "Action"]
    assert parse(text).title_page["Title"] == ["The Lighthouse Keeper"]
    said = [(type(e).__name__, getattr(e, "text", getattr(e, "name", ""))) for e in shown]
    assert ("Character", "MARA") in said and ("Parenthetical", "(quietly)") in said
    assert ("Dialogue", "Every night for forty years, Mara climbed the stairs.") in said
    assert ("Transition", "DISSOLVE TO:") in said and ("Transition", "FADE TO BLACK.") in said
    assert not any("camera" in str(x) or "lora" in str(x) for x in said)  # storylang's own words stay hidden


def test_text_a_fountain_app_would_misread_is_forced_or_kept_hidden(tmp_path):
    script = '''EXT. A - DAY
  shot 1 wide 2s
    action "INT. is not a heading here"
    action "LOUD NOISES CUT TO:"
    action "an *emphasis* and a back\\\\slash and _under_"
    action "a /* comment"
    MARA: (not a parenthetical) words
'''
    text = script.replace('EXT. A - DAY', 'character MARA\n\nEXT. A - DAY')
    film, errors = resolved(text, tmp_path)
    assert not errors
    back = round_trip(text, tmp_path)
    again, errors = resolved(back, tmp_path / "back")
    assert not errors and meaning(again) == meaning(film)
    with pytest.raises(FountainError, match=r"cannot be kept in a Fountain boneyard"):
        to_fountain(parse_text('EXT. A - DAY\n  shot 1 wide 2s\n    camera static\n    note "a */ b"\n', "x")[0])


def test_plain_removes_emphasis_and_notes_and_resolves_escapes():
    assert plain("*a* **b** ***c*** _d_ \\*e\\* [[note]] f") == "a b c d *e* f"
    assert plain("5 * 3 = 15") == "5 * 3 = 15"


# ---------------------------------------------------------------- generated scripts

WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"),
                max_size=25)
TRICKY = st.sampled_from(["INT. OR NOT", "CUT TO:", "*star*", "_under_", "back\\slash", "(paren)", "@at", "!bang",
                          "> arrow", "~tilde", "# hash", "= eq", "..", "  spaced  out  ", "ÉTÉ", ""])
TEXT = st.one_of(WORDS, TRICKY).filter(lambda s: "*/" not in s)
NAMES = st.sampled_from(["MARA", "TOM", "OLD TOM"])


@st.composite
def scripts(draw):
    out = [f"title {quote(draw(TEXT))}"]
    names = draw(st.lists(NAMES, unique=True, min_size=1, max_size=3))
    for name in names:
        out += [f"character {name}", f"  look {quote(draw(TEXT))}"]
    if draw(st.booleans()):
        out.append("> fade from black 1s")
    numbered = 0
    for _ in range(draw(st.integers(1, 3))):
        out.append(f"{draw(st.sampled_from(['EXT.', 'INT.', 'EST.', 'I/E.']))} PLACE - DAY")
        if draw(st.booleans()):
            out.append(f"  lighting {quote(draw(TEXT))}")
        for _ in range(draw(st.integers(1, 3))):
            numbered += 1
            number = draw(st.sampled_from(["", f"{numbered} ", f"{numbered}A "]))
            cast = draw(st.lists(st.sampled_from(names), unique=True, max_size=2))
            on = f" on {' and '.join(cast)}" if cast else ""
            out.append(f"  shot {number}{draw(st.sampled_from(['wide', 'close']))}{on} {draw(st.sampled_from(['2s', '2.5s']))}")
            for _ in range(draw(st.integers(0, 4))):
                kind = draw(st.sampled_from(["action", "narrate", "camera", "dialogue"]))
                if kind in ("action", "narrate"):
                    out.append(f"    {kind} {quote(draw(TEXT))}")
                elif kind == "camera":
                    out.append(f"    camera {draw(st.sampled_from(['push in slow', 'static']))}")
                else:
                    paren = draw(st.sampled_from(["", " (quietly)", " (V.O.)"]))
                    line = draw(TEXT.map(str.strip).filter(lambda s: s and not s.startswith("//")) | st.just("Yes."))
                    out.append(f"    {draw(st.sampled_from(names))}{paren}: {line}")
            if draw(st.booleans()):
                out.append("  > dissolve 0.5s")
    if draw(st.booleans()):
        out.append("  shot wide 2s")  # a dissolve at the end needs a shot after it
        out.append("> fade to black 1s")
    return "\n".join(out) + "\n"


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(scripts())
def test_import_of_export_is_the_same_film(text):
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        film, errors = resolved(text, folder)
        assume(film is not None and not errors)
        back = round_trip(text, folder)
        again, errors = resolved(back, folder / "back")
        assert not errors, (back, errors)
        assert meaning(again) == meaning(film)


def test_comments_travel_as_notes_and_an_edited_screenplay_still_imports(tmp_path):
    text = (EXAMPLES / "lighthouse.story").read_text()
    tree, _ = parse_text(text, "lighthouse.story")
    fountain = to_fountain(tree)
    assert "[[A three-shot demo: `storyc build examples/lighthouse.story`]]" in fountain
    back = import_text(fountain, "l.fountain", "l.story")
    assert "// A three-shot demo: `storyc build examples/lighthouse.story`" in back
    # a writer adds a scene in a Fountain app, between the two of the export
    edited = fountain.replace("INT. LAMP ROOM - NIGHT", "EXT. STAIRS - NIGHT\n\nMara climbs, step by step.\n\n"
                              "MARA\nOne more night.\n\nINT. LAMP ROOM - NIGHT")
    story = import_text(edited, "l.fountain", "l.story")
    film, errors = resolved(story, tmp_path / "edited", "l.story")
    assert not errors, errors
    assert [s.heading for s in film.scenes] == ["EXT. LIGHTHOUSE CLIFF - NIGHT", "EXT. STAIRS - NIGHT",
                                                "INT. LAMP ROOM - NIGHT"]
    added = film.shots[2]
    assert added.action == "Mara climbs, step by step." and added.lines[0].text == "One more night."
    assert 'note "guess: written in the screenplay' in story


def test_transitions_land_between_the_shots_they_join(tmp_path):
    screenplay = ("FADE IN:\n\nEXT. A - DAY\n\nBoats.\n\nDISSOLVE TO:\n\nINT. B - NIGHT\n\nA lamp.\n\nFADE IN:\n\n"
                  "More.\n\nFADE TO BLACK.\n\nEven more.\n\nWIPE TO:\n\nLast.\n\nFADE OUT.\n")
    story = import_text(screenplay, "t.fountain", "t.story")
    film, errors = resolved(story, tmp_path, "t.story")
    assert not errors, (story, errors)
    assert film.fade_in > 0 and film.fade_out > 0
    assert [s.transition.kind if s.transition else None for s in film.shots] == ["dissolve", None, "fade", "wipe", None]
    assert "// FADE IN: (mid-film: a cut)" in story


PIECES = ["INT. HOUSE - DAY", "EXT. A", ".FORCED", "EST. X - NIGHT #3#", "Some action here.", "!LOUD ACTION",
          "BOB\nHello.", "BOB (V.O.)\n(softly)\nHi there.\n(beat)\nAgain.", "@McBob\nYo.", "ALICE ^\nSame.",
          "CUT TO:", "DISSOLVE TO:", "> FADE TO BLACK.", "FADE IN:", "> THE END <", "[[a note]]", "/* bone\nyard */",
          "# Act", "= synopsis", "===", "~la la", "Title: T\nAuthor: A", "ÉLODIE\nBonjour.", "黒澤\nこんにちは",
          "SMASH CUT TO:", "> Burn to white.", "Action with [[inline note]] in it."]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), min_size=1, max_size=12))
def test_any_screenplay_of_the_specs_pieces_imports_into_a_script_that_resolves(pieces):
    story = import_text("\n\n".join(pieces) + "\n", "f.fountain", "f.story")
    with tempfile.TemporaryDirectory() as d:
        film, errors = resolved(story, Path(d), "f.story")
        assert film is not None and not errors, (story, errors)


def test_an_action_ending_in_a_colon_is_printed_and_plain_transitions_are_not_forced(tmp_path):
    from storylang.fountain import to_fountain
    from storylang.syntax.parse import parse_text

    tree, _ = parse_text('EXT. A - DAY\n  shot 1 wide 2s\n    action "His minion approaches offscreen:"\n'
                         '  > dissolve 0.5s\n  shot 2 wide 2s\n    action "x"\n', "f.story")
    text = to_fountain(tree)
    # what a Fountain app prints: every line outside the /* storylang ... */ blocks
    outside = [line for block in text.split("*/") for line in block.split("/* storylang")[0].splitlines()]
    assert any(line.lstrip("!") == "His minion approaches offscreen:" for line in outside)
    assert "DISSOLVE TO:" in outside and "> DISSOLVE TO:" not in text
