"""What `storyc check` accepts, `storyc build` builds: same voices, same timing, same media checks."""

from click.testing import CliRunner

from storylang.build import BuildOptions, build
from storylang.check import check_film
from storylang.cli import main

HEADER = 'format 384x216 @ 12fps\ncharacter MARA\n  voice "en-us+f3" rate 170\n'
LONG = "one two three four five six seven eight "


def test_an_unknown_voice_fails_check_at_its_line(write_story):
    path = write_story(HEADER.replace("en-us+f3", "en-uss") + 'EXT. A - DAY\n  shot 1 close on MARA 2s\n    MARA: Hi.\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    # at the voice statement, the line to change, not at the first line spoken
    assert 'film.story:3:9: error: unknown voice "en-uss"; did you mean "en-us"?' in result.output


def test_build_reports_an_unknown_voice_at_its_line_too(write_story):
    path = write_story(HEADER.replace("en-us+f3", "en-uss") + 'EXT. A - DAY\n  shot 1 close on MARA 2s\n    MARA: Hi.\n')
    result = CliRunner().invoke(main, ["build", str(path), "--preview"])
    assert result.exit_code == 1
    assert 'film.story:3:9: error: MARA cannot speak: unknown voice "en-uss"' in result.output


def test_every_mistake_is_reported_in_one_run(write_story):
    path = write_story('character MARA\n  voice "en-uss"\nnarrator "xx-zz"\nEXT. A - DAY\n'
                       '  shot 1 close on MARA 2s\n    MARA: Hi.\n    actoin "x"\n  shot 2 wide 2s\n'
                       '    camera push sideways\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert [line.split(": error:")[0].rsplit(":", 2)[1] for line in result.output.splitlines()
            if ": error:" in line] == ["2", "3", "7", "9"]


def test_speech_that_overruns_under_overrun_error_fails_check_at_the_shot(write_story):
    path = write_story(HEADER + 'overrun error\nEXT. A - DAY\n  shot 1 close on MARA 1s\n    MARA: ' + LONG + '\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1
    assert "film.story:6:3: error: the speech of shot 1 takes" in result.output


def test_check_dry_run_and_build_report_the_same_length(write_story):
    path = write_story(HEADER + 'EXT. A - DAY\n  shot 1 close on MARA 1s\n    MARA: ' + LONG + '\n'
                       '  > dissolve 6f\n  shot 2 wide 3s\n    narrate "Nothing."\n')
    checked = check_film(path, graphs=False)
    assert [d.code for d in checked.diagnostics] == ["speech-too-long"]
    planned = build(path, BuildOptions(dry_run=True))
    built = build(path, BuildOptions(preview=True))
    assert checked.timing.frames == planned.frames == built.frames > 12 + 36 - 6
    assert planned.notes == built.notes and "shot 1 lengthened" in built.notes[0]
    result = CliRunner().invoke(main, ["check", str(path)])
    seconds = built.frames / 12
    assert f"{seconds:.1f}s at 384x216" in result.output


def test_check_and_dry_run_report_the_same_length_for_every_example(tmp_path):
    import shutil
    from pathlib import Path

    examples = Path(__file__).resolve().parent.parent / "examples"
    shutil.copytree(examples, tmp_path / "films", ignore=shutil.ignore_patterns("build"))
    for path in sorted((tmp_path / "films").glob("*.story")):
        if path.stem == "bible":  # an included file, not a film
            continue
        checked = check_film(path, graphs=False)
        assert checked.film is not None, checked.diagnostics
        planned = build(path, BuildOptions(dry_run=True))
        assert checked.timing.frames == planned.frames, path.name
