"""Generated hostile scripts through `check` and `graph`: never a traceback, never a write outside
the project, every error one line with its place.

The normal run tries FUZZ_EXAMPLES scripts (150); the full run (docs/security.md) is
    STORYC_FUZZ_EXAMPLES=10000 pytest tests/security/test_fuzz.py
"""

from __future__ import annotations

import os
import re

from hypothesis import HealthCheck, given, settings, strategies as st

from hostile import listing, run

FUZZ_EXAMPLES = int(os.environ.get("STORYC_FUZZ_EXAMPLES", "150"))
ERROR_LINE = re.compile(r"^(?:[^\n]+:\d+:\d+: (?:error|warning|note): |storyc: |[^\n]+: \d+ scenes?, )")

PATHS = ["../x.png", "/etc/passwd", "/dev/zero", "~/.ssh/id_rsa", "a/../../b.story", "..\\..\\x", "", "build",
         "build/cache", "face.png", "film.story", "sub/face.png", "%2e%2e/x", "link/secret.story", "nul", "x\\",
         "\u202e.png"]
WORDS = ["wide", "close", "medium", "on", "MARA", "and", "TOM", "push", "in", "slow", "orbit", "left", "20deg",
         "dissolve", "wipe", "fade", "0.5s", "3s", "1f", "99999999999999999999s", "0s", "-1s", "1280x720",
         "24fps", "x", "@", ">", ":", "//", '"', "\\", "(", ")", "*/", "'", "\u00e9", "\U0001f600"]
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list("\"\\/.'\n\t:")), max_size=40)
NAME = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(list("/\\.~")), min_size=1,
               max_size=30)


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


# one statement of each kind, from a path, some words and a draw (a table, not a chain of ifs)
STATEMENTS = {
    "include": lambda path, words, draw: f"include {path}",
    "media": lambda path, words, draw: draw(st.sampled_from(
        [f"  reference {path}", f"    keyframes {path} {path}", f"  music {path}", f"    source {path}"])),
    "shot": lambda path, words, draw: f"  shot {quoted(draw(NAME))} {words}",
    "camera": lambda path, words, draw: f"    camera {words}",
    "line": lambda path, words, draw: f"    {draw(st.sampled_from(['MARA', 'TOM', 'NOBODY']))}: "
                                      f"{draw(st.sampled_from(['Again.', 'It’s late.', 'No.']))}",
    "say": lambda path, words, draw: f"    action {quoted(draw(TEXT))}",
    "words": lambda path, words, draw: f"    {words}",
    "transition": lambda path, words, draw: f"  > {words}",
    "format": lambda path, words, draw: f"format {words}",
    "llm": lambda path, words, draw: f'llm "m" server {quoted("http://127.0.0.1:9/v1")}',
    "title": lambda path, words, draw: f"title {quoted(draw(TEXT))}",
    "raw": lambda path, words, draw: draw(TEXT).split("\n")[0],
}


@st.composite
def statement(draw) -> str:
    kind = draw(st.sampled_from(sorted(STATEMENTS)))
    path = quoted(draw(st.sampled_from(PATHS)))
    words = " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=5)))
    return STATEMENTS[kind](path, words, draw)


@st.composite
def script(draw) -> str:
    head = ['model "dreamshaper_8.safetensors"', "character MARA", '  voice "en-us"', "character TOM"]
    body = ["EXT. QUAY - DAY", '  shot 1 wide 1s', '    action "boats"']
    lines = head + body + draw(st.lists(statement(), max_size=12))
    return "\n".join(draw(st.permutations(lines)) if draw(st.booleans()) else lines) + "\n"


def test_generated_scripts_never_crash_or_write_outside(tmp_path_factory):
    top = tmp_path_factory.mktemp("fuzz")
    (top / "outside").mkdir()
    (top / "outside" / "secret.story").write_text('title "TOP SECRET"\n')
    project = top / "film"
    project.mkdir()
    (project / "link").symlink_to(top / "outside")
    outside_before = listing(top / "outside")
    seen = {"runs": 0}

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(script())
    def one(text: str) -> None:
        (project / "film.story").write_text(text, encoding="utf-8")
        siblings = sorted(p.name for p in top.iterdir())
        for args in (("check", project / "film.story"), ("graph", project / "film.story", "--object-info", "core")):
            result = run(*args, cwd=project)
            seen["runs"] += 1
            assert result.exception is None or isinstance(result.exception, SystemExit), (text, result.output)
            assert result.exit_code in (0, 1), (text, result.output)
            assert "Traceback" not in result.output and "TOP SECRET" not in result.output
            for line in result.output.splitlines():
                if line and not line.startswith((" ", "=")) and re.match(r"[^\s|]", line) \
                        and not re.match(r"^\d+ \| ", line) and "graphs written" not in line:
                    assert ERROR_LINE.match(line), (text, line)
        assert sorted(p.name for p in top.iterdir()) == siblings
        assert listing(top / "outside") == outside_before

    one()
    assert seen["runs"] >= 2
