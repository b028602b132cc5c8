"""`storyc clean` deletes only what storyc made, and no build writes through a planted link."""

from __future__ import annotations

import pytest

from hostile import listing, no_traceback, run

SCRIPT = 'format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n    action "x"\n'


@pytest.fixture
def film(tmp_path):
    d = tmp_path / "film"
    d.mkdir()
    (d / "film.story").write_text(SCRIPT)
    (d / "notes.txt").write_text("mine")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "precious.txt").write_text("keep me")
    return d


def test_clean_all_refuses_a_build_link_to_the_project_itself(film):
    (film / "build").symlink_to("..")
    before = listing(film.parent)
    result = run("clean", film / "film.story", "--all")
    assert result.exit_code == 1
    no_traceback(result)
    assert "is a link to" in result.output and "STORYC_BUILD_LINK" in result.output
    assert listing(film.parent) == before


def test_clean_all_refuses_a_link_elsewhere_and_a_folder_without_the_marker(film):
    (film / "build").symlink_to(film.parent / "elsewhere")
    assert run("clean", film / "film.story", "--all").exit_code == 1
    assert (film.parent / "elsewhere" / "precious.txt").read_text() == "keep me"
    (film / "build").unlink()
    (film / "build").mkdir()
    (film / "build" / "mine.txt").write_text("not storyc's")
    result = run("clean", film / "film.story", "--all")
    assert result.exit_code == 1 and "no storyc marker" in result.output
    assert (film / "build" / "mine.txt").is_file()


def test_clean_all_removes_links_inside_the_build_folder_never_what_they_point_at(film):
    assert run("build", film / "film.story", "--preview").exit_code == 0
    (film / "build" / "film" / "escape").symlink_to(film.parent / "elsewhere")
    result = run("clean", film / "film.story", "--all")
    assert result.exit_code == 0, result.output
    assert not (film / "build").exists()
    assert (film.parent / "elsewhere" / "precious.txt").read_text() == "keep me"
    assert (film / "notes.txt").is_file() and (film / "film.story").is_file()


def test_a_users_own_link_is_used_and_cleaned_when_they_say_so(film, monkeypatch):
    (film / "build").symlink_to(film.parent / "elsewhere")
    monkeypatch.setenv("STORYC_BUILD_LINK", "1")
    assert run("build", film / "film.story", "--preview").exit_code == 0
    assert (film.parent / "elsewhere" / "film" / "film-preview.mp4").is_file()
    assert run("clean", film / "film.story", "--all").exit_code == 0
    assert (film / "build").is_symlink()  # the user's link stays; what storyc made in it is gone
    assert sorted(p.name for p in (film.parent / "elsewhere").iterdir()) == ["precious.txt"]


@pytest.mark.parametrize("link", ["build", "build/cache", "build/cache/speech", "build/film"])
def test_a_build_never_writes_through_a_planted_folder_link(film, link):
    target = film / link
    target.parent.mkdir(parents=True, exist_ok=True)
    target.symlink_to(film.parent / "elsewhere")
    before = listing(film.parent / "elsewhere")
    result = run("build", film / "film.story", "--preview")
    assert result.exit_code == 1
    no_traceback(result)
    assert "is a link to" in result.output
    assert listing(film.parent / "elsewhere") == before


def test_a_planted_file_link_is_replaced_not_written_through(film):
    assert run("build", film / "film.story", "--preview").exit_code == 0
    srt = film / "build" / "film" / "film.srt"
    srt.unlink()
    srt.symlink_to(film.parent / "elsewhere" / "precious.txt")
    (film / "film.story").write_text(SCRIPT.replace('"x"', '"y"') + '    narrate "Hello."\n')
    assert run("build", film / "film.story", "--preview").exit_code == 0
    assert (film.parent / "elsewhere" / "precious.txt").read_text() == "keep me"
    assert not srt.is_symlink() and "Hello." in srt.read_text()
