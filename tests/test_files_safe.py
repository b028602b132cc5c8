"""Files are never harmed: formatting keeps modes and links, -o never replaces what is not ours."""

import os
import stat

from click.testing import CliRunner

from storylang.cli import main

UNFORMATTED = 'format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1   wide 1s\n'


def test_fmt_keeps_the_mode_and_writes_through_a_symlink(write_story, tmp_path):
    real = write_story(UNFORMATTED, name="real.story")
    real.chmod(0o640)
    link = tmp_path / "link.story"
    link.symlink_to(real.name)
    result = CliRunner().invoke(main, ["fmt", str(link)])
    assert result.exit_code == 0, result.output
    assert link.is_symlink() and os.readlink(link) == "real.story"
    assert "shot 1 wide 1s" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def _build(path, *args):
    return CliRunner().invoke(main, ["build", str(path), "--preview", *args])


def test_o_refuses_directories_devices_and_paths_inside_files(write_story, tmp_path):
    path = write_story(UNFORMATTED)
    for target, words in ((tmp_path, "is a directory"), (path / "x.mp4", "is a file, not a directory"),
                          ("/dev/null", "not a regular file")):
        result = _build(path, "-o", str(target))
        assert result.exit_code == 1 and "Traceback" not in result.output, result.output
        assert words in result.output
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_o_replaces_only_films_of_ours_unless_forced(write_story, tmp_path):
    path = write_story(UNFORMATTED)
    notes = tmp_path / "notes.mp4"
    notes.write_text("my notes")
    result = _build(path, "-o", str(notes))
    assert result.exit_code == 1 and "was not written by storyc; pass --force" in result.output
    assert notes.read_text() == "my notes"
    film = tmp_path / "film.mp4"
    assert _build(path, "-o", str(film)).exit_code == 0
    assert stat.S_IMODE(film.stat().st_mode) == 0o666 & ~_umask()
    path.write_text(UNFORMATTED.replace("1s", "2s"))
    assert _build(path, "-o", str(film)).exit_code == 0  # our own film is replaced
    assert _build(path, "-o", str(notes), "--force").exit_code == 0


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
