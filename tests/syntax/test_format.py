"""`storyc fmt` is canonical, idempotent and keeps meaning and comments."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storylang.syntax.format import format_script, quote, shot_numbers
from storylang.syntax.parse import parse_text


def parse(text):
    tree, diags = parse_text(text, "f.story")
    assert tree is not None, (text, diags)
    return tree


def fmt(text, **kw):
    return format_script(parse(text), text, **kw)


SPAN_KEYS = {"span", "key_span", "speaker_span", "number_span", "text_span", "name_span", "raw"}


def meaning(tree):
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k not in SPAN_KEYS}
        if isinstance(x, (list, tuple)):
            return [strip(v) for v in x]
        return x

    data = strip(tree.model_dump())
    data["comments"] = [c[0] for c in data["comments"]]
    return data


MESSY = '''// header
title   "X"
model "m.safetensors"   steps 20
character MARA
    look "a"   // trailing
EXT. A - DAY
    shot 1   wide on MARA   3s
          camera push in slow


          MARA ( softly ) :   Hello there.
    >   dissolve   0.5s
'''


def test_messy_script_is_reindented_and_spaced():
    assert fmt(MESSY) == '''// header
title "X"
model "m.safetensors"  steps 20

character MARA
  look "a"  // trailing

EXT. A - DAY
  shot 1 wide on MARA 3s
    camera push in slow

    MARA (softly): Hello there.
  > dissolve 0.5s
'''


def test_formatting_twice_changes_nothing():
    once = fmt(MESSY)
    assert fmt(once) == once


def test_numbering_locks_new_shots_between_existing_ones():
    text = "EXT. A - DAY\n  shot 12 wide 2s\n  shot wide 2s\n  shot wide 2s\n  shot 13 wide 2s\n  shot close 2s\n"
    assert list(shot_numbers(parse(text)).values()) == ["12A", "12B", "14"]
    out = fmt(text, number_shots=True)
    assert "shot 12A wide 2s" in out and "shot 12B wide 2s" in out and "shot 14 close 2s" in out


def test_numbering_never_renumbers():
    text = "EXT. A - DAY\n  shot 5 wide 2s\n  shot 3 wide 2s\n"
    assert fmt(text, number_shots=True) == text


# ---------------------------------------------------------------- generated scripts

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\u2028\u2029\x85"), max_size=30)
LINE = TEXT.map(str.strip).filter(lambda s: s and not s.startswith("//"))
NAMES = st.sampled_from(["MARA", "TOM", "OLD TOM", "IDA"])
SECONDS = st.sampled_from(["1s", "2.5s", "72f", "500ms", "3s"])


@st.composite
def scripts(draw):
    out = []
    if draw(st.booleans()):
        out.append("// " + draw(TEXT).replace("\n", " "))
    out.append(f"title {quote(draw(TEXT))}")
    if draw(st.booleans()):
        out.append(f"style {quote(draw(TEXT))}  steps {draw(st.integers(1, 80))}  cfg {draw(st.integers(1, 20))}")
    for name in draw(st.lists(NAMES, unique=True, max_size=3)):
        out.append(f"character {name}")
        out.append(f"  look {quote(draw(TEXT))}")
        if draw(st.booleans()):
            out.append(f'  voice "en-us" rate {draw(st.integers(80, 300))}')
    for _ in range(draw(st.integers(0, 3))):
        out.append(f"{draw(st.sampled_from(['EXT.', 'INT.']))} PLACE - DAY")
        if draw(st.booleans()):
            out.append(f"  setting {quote(draw(TEXT))}")
        for _ in range(draw(st.integers(0, 3))):
            number = draw(st.sampled_from(["", "1 ", "12A "]))
            if draw(st.booleans()):
                number += quote(draw(TEXT)) + " "
            cast = draw(st.lists(NAMES, unique=True, max_size=2))
            on = f" on {' and '.join(cast)}" if cast else ""
            out.append(f"  shot {number}{draw(st.sampled_from(['wide', 'close', 'over the shoulder']))}{on} {draw(SECONDS)}")
            for _ in range(draw(st.integers(0, 3))):
                kind = draw(st.sampled_from(["action", "narrate", "camera", "dialogue", "comment", "blank"]))
                if kind in ("action", "narrate"):
                    out.append(f"    {kind} {quote(draw(TEXT))}")
                elif kind == "camera":
                    out.append(f"    camera {draw(st.sampled_from(['push in slow', 'static', 'pan left 30%']))}")
                elif kind == "dialogue":
                    paren = draw(st.sampled_from(["", " (quietly)"]))
                    out.append(f"    {draw(NAMES)}{paren}: {draw(LINE)}")
                elif kind == "comment":
                    out.append("    // " + draw(TEXT).replace("\n", " "))
                else:
                    out.append("")
            if draw(st.booleans()):
                out.append(f"  > dissolve {draw(SECONDS)}")
    indent = draw(st.sampled_from(["  ", "    ", "\t"]))
    return "\n".join(line.replace("  ", indent) if line.startswith("  ") else line for line in out) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scripts())
def test_fmt_preserves_meaning_and_is_idempotent(text):
    tree = parse(text)
    once = format_script(tree, text)
    assert meaning(parse(once)) == meaning(tree)
    assert format_script(parse(once), once) == once
