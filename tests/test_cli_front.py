"""`storyc check` and `storyc fmt` as a writer and a CI job use them."""

import json
import subprocess
import sys

from click.testing import CliRunner

from storylang.cli import main


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_check_passes_a_good_script(write_story):
    path = write_story('EXT. A - DAY\n  shot 1 wide 2s\n')
    result = run("check", str(path))
    assert result.exit_code == 0
    assert "1 scene, 1 shot" in result.output


def test_check_fails_with_file_line_col_caret_and_hint(write_story):
    path = write_story('EXT. A - DAY\n  shot 1 wide 2s\n    camera push-inn slow\n')
    result = run("check", str(path))
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == f'{path}:3:12: error: unknown camera move "push-inn"'
    assert lines[3].endswith("           ^^^^^^^^")
    assert 'did you mean "push in"?' in lines[4]


def test_check_json_is_machine_readable(write_story):
    path = write_story('EXT. A - DAY\n  shot 1 wdie 2s\n')
    result = run("check", "--format", "json", str(path))
    assert result.exit_code == 1
    (d,) = json.loads(result.stdout)
    assert (d["line"], d["column"], d["code"], d["hint"]) == (2, 10, "unknown-framing", 'did you mean "wide"?')


def test_check_dump_is_deterministic(write_story):
    path = write_story('EXT. A - DAY\n  shot 1 wide 2s\n    action "x"\n')
    a, b = run("check", "--dump", str(path)), run("check", "--dump", str(path))
    assert a.stdout == b.stdout
    assert json.loads(a.stdout)["shots"][0]["action"] == "x"


def test_fmt_check_reports_without_writing(write_story):
    path = write_story('EXT. A - DAY\n    shot 1   wide 2s\n')
    before = path.read_text()
    result = run("fmt", "--check", str(path))
    assert result.exit_code == 1 and "would reformat" in result.output
    assert path.read_text() == before
    assert run("fmt", str(path)).exit_code == 0
    assert path.read_text() == "EXT. A - DAY\n  shot 1 wide 2s\n"
    assert run("fmt", "--check", str(path)).exit_code == 0


def test_fmt_refuses_a_broken_script_and_leaves_it_alone(write_story):
    path = write_story('EXT. A - DAY\n  shot 1 wide 2s\n    acton "x"\n')
    result = run("fmt", str(path))
    assert result.exit_code == 1
    assert path.read_text() == 'EXT. A - DAY\n  shot 1 wide 2s\n    acton "x"\n'


def test_no_traceback_whatever_the_input(tmp_path):
    cases = {
        "junk.story": bytes(range(256)) * 4,
        "empty.story": b"",
        "deep.story": b"".join(b" " * i + b"shot\n" for i in range(0, 2000, 2)),
        "crlf.story": b'title "x"\r\nEXT. A - DAY\r\n\tshot 1 wide 2s\r\n',
        "big.story": b'EXT. A - DAY\n' + b'  shot wide 2s\n    action "' + b"x" * 100 + b'"\n' * 1 + (b'  shot wide 2s\n' * 20000),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        proc = subprocess.run([sys.executable, "-m", "storylang.cli", "check", name], cwd=tmp_path,
                              capture_output=True, text=True)
        assert "Traceback" not in proc.stderr, (name, proc.stderr[-2000:])
        assert proc.returncode in (0, 1), name
    missing = subprocess.run([sys.executable, "-m", "storylang.cli", "check", "nope.story"], cwd=tmp_path,
                             capture_output=True, text=True)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert "cannot read nope.story" in missing.stderr


def test_the_examples_are_in_canonical_format():
    from pathlib import Path

    examples = sorted(str(p) for p in (Path(__file__).parent.parent / "examples").glob("*.story"))
    result = run("fmt", "--check", *examples)
    assert result.exit_code == 0, result.output


def test_fmt_refuses_a_script_whose_text_it_could_not_keep(write_story):
    path = write_story('title "C:\\films\\new\\x"\ntitle "a\\qb"\n')
    before = path.read_text()
    result = run("fmt", str(path))
    assert result.exit_code == 1 and "unknown escape" in result.output
    assert path.read_text() == before
