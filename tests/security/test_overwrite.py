"""No output replaces the script, a file the film reads, or a file storyc did not write."""

from __future__ import annotations

import errno

import pytest

from conftest import tiny_png
from hostile import no_traceback, run
from storylang import assemble

SCRIPT = ('format 384x216 @ 24fps\ncharacter MARA\n  reference "face.png"\n'
          'EXT. A - DAY\n  shot 1 close on MARA 1s\n    narrate "It\'s late."\n')


@pytest.fixture
def film(write_story):
    return write_story(SCRIPT, **{"face.png": tiny_png()})


@pytest.mark.parametrize("fmt", ["otio", "edl", "fcp7", "fountain"])
def test_export_never_writes_over_the_script_even_with_force(film, fmt):
    before = film.read_bytes()
    for extra in ((), ("--force",)):
        result = run("export", film, "--format", fmt, "-o", film, *extra)
        assert result.exit_code == 1
        no_traceback(result)
        assert "is a file the film reads" in result.output
    assert film.read_bytes() == before


def test_export_and_build_never_write_over_a_file_the_film_reads(film):
    png = film.parent / "face.png"
    before = png.read_bytes()
    assert run("export", film, "--format", "otio", "-o", png, "--force").exit_code == 1
    assert run("build", film, "--preview", "-o", png, "--force").exit_code == 1
    assert run("board", film, "-o", film.parent / "x.html").exit_code == 0
    assert png.read_bytes() == before


def test_export_replaces_a_stranger_file_only_with_force_and_its_own_always(film):
    other = film.parent / "notes.edl"
    other.write_text("my notes")
    result = run("export", film, "--format", "edl", "-o", other)
    assert result.exit_code == 1 and "was not written by storyc; pass --force" in result.output
    assert other.read_text() == "my notes"
    assert run("export", film, "--format", "edl", "-o", other, "--force").exit_code == 0
    assert run("export", film, "--format", "edl", "-o", other).exit_code == 0  # ours now
    board = film.parent / "board.html"
    board.write_text("<p>mine</p>")
    assert run("board", film, "-o", board).exit_code == 1
    assert board.read_text() == "<p>mine</p>"


def test_a_failed_build_leaves_the_last_film_and_its_side_files_together(film, monkeypatch):
    assert run("build", film, "--preview").exit_code == 0
    d = film.parent / "build" / "film"
    kept = {p.name: p.read_bytes() for p in d.iterdir() if p.suffix in (".mp4", ".srt", ".vtt", ".json")
            and p.name in ("film-preview.mp4", "film.srt", "film.vtt", "timeline.json")}
    assert len(kept) == 4
    film.write_text(SCRIPT.replace("It's late.", "It is early."))

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(assemble, "mux", full_disk)
    result = run("build", film, "--preview")
    assert result.exit_code == 1
    no_traceback(result)
    assert "No space left on device" in result.output
    assert {name: (d / name).read_bytes() for name in kept} == kept
    assert not [p for p in d.rglob("*.part")]
