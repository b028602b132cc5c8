"""A script reads only inside its project, and a name from it never becomes a path."""

from __future__ import annotations

import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import tiny_png
from hostile import PLACE, listing, no_traceback, run
from storylang.filenames import film_folder, safe_stem

SHOT = 'EXT. A - DAY\n  shot 1 wide 1s\n    action "x"\n'


@pytest.fixture
def project(tmp_path):
    """tmp/outside/secret.txt beside tmp/film/ (the project: a git repository's top)."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.story").write_text('title "TOP SECRET LINE"\n')
    (tmp_path / "outside" / "face.png").write_bytes(tiny_png())
    film = tmp_path / "film"
    film.mkdir()
    (film / ".git").mkdir()
    return film


@pytest.mark.parametrize("name", ["../outside/secret.story", "{outside}/secret.story", "link/secret.story",
                                  "sub/../../outside/secret.story"])
def test_an_include_outside_the_project_is_refused_at_its_line_without_quoting_the_file(project, name):
    (project / "link").symlink_to(project.parent / "outside")
    name = name.format(outside=project.parent / "outside")
    (project / "film.story").write_text(f'include "{name}"\n' + SHOT)
    before = listing(project.parent / "outside")
    result = run("check", project / "film.story")
    assert result.exit_code == 1
    no_traceback(result)
    assert "film.story:1:9: error: included script" in result.output and "is outside the project" in result.output
    assert "--allow-read" in result.output
    assert "TOP SECRET" not in result.output
    assert listing(project.parent / "outside") == before


@pytest.mark.parametrize("statement", ['  reference "{x}"', '    keyframes "{x}" "{x}"'])
def test_media_outside_the_project_is_refused(project, statement):
    x = project.parent / "outside" / "face.png"
    if statement.startswith("    "):
        text = SHOT + statement.format(x=x) + "\n"
    else:
        text = "character MARA\n" + statement.format(x=x) + "\n" + SHOT.replace("wide 1s", "close on MARA 1s")
    (project / "film.story").write_text(text)
    result = run("check", project / "film.story")
    assert result.exit_code == 1
    assert PLACE.search(result.output) and "is outside the project" in result.output


def test_allow_read_lets_the_user_open_another_folder(project):
    x = project.parent / "outside" / "face.png"
    (project / "film.story").write_text(f'character MARA\n  reference "{x}"\n'
                                        + SHOT.replace("wide 1s", "close on MARA 1s"))
    assert run("check", project / "film.story").exit_code == 1
    result = run("--allow-read", project.parent / "outside", "check", project / "film.story")
    assert result.exit_code == 0, result.output


def test_the_users_own_config_allows_folders_but_the_project_cannot(project, monkeypatch, tmp_path):
    x = project.parent / "outside" / "face.png"
    (project / "film.story").write_text(f'character MARA\n  reference "{x}"\n'
                                        + SHOT.replace("wide 1s", "close on MARA 1s"))
    (project / "storyc.toml").write_text(f'[trust]\nread = ["{project.parent / "outside"}"]\n')
    assert run("check", project / "film.story").exit_code == 1  # a [trust] table in the project is no key
    config = Path(os.environ["XDG_CONFIG_HOME"]) / "storyc" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'[trust]\nread = ["{project.parent / "outside"}"]\n')
    (project / "storyc.toml").unlink()
    assert run("check", project / "film.story").exit_code == 0


@pytest.mark.parametrize("kind", ["folder", "fifo", "device"])
def test_a_folder_pipe_or_device_given_as_media_says_what_it_is(project, kind):
    target = {"folder": "shots.png", "fifo": "pipe.png", "device": "zero.png"}[kind]
    if kind == "folder":
        (project / target).mkdir()
    elif kind == "fifo":
        os.mkfifo(project / target)
    else:
        (project / target).symlink_to("/dev/zero")
    (project / "film.story").write_text(f'character MARA\n  reference "{target}"\n'
                                        + SHOT.replace("wide 1s", "close on MARA 1s"))
    args = ("--allow-read", "/dev") if kind == "device" else ()
    result = run(*args, "check", project / "film.story")
    assert result.exit_code == 1
    no_traceback(result)
    what = {"folder": "is a folder", "fifo": "is a named pipe", "device": "is a device"}[kind]
    assert f'film.story:2:13: error: reference image "{target}" {what}, not a file' in result.output
    assert "did you mean" not in result.output


def test_includes_nested_too_deep_are_one_error_naming_the_chain(project):
    depth = 480
    for i in range(depth):
        (project / f"f{i}.story").write_text(f'include "f{i + 1}.story"\n')
    (project / f"f{depth}.story").write_text(SHOT)
    result = run("check", project / "f0.story")
    assert result.exit_code == 1
    no_traceback(result)
    assert "error: includes nest deeper than 32 files: f0.story → f1.story → ... →" in result.output


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=80))
def test_a_safe_stem_is_a_plain_name_and_never_the_same_for_two_texts(text):
    stem = safe_stem(text)
    assert stem and set(stem) <= set(string.ascii_letters + string.digits + "-_")
    assert len(stem) <= 48 and stem not in (".", "..")
    other = text + "x"
    assert safe_stem(other) != stem


def test_film_folders_never_meet_the_build_folders_own():
    assert film_folder("cache") != "cache" and film_folder("tmp") != "tmp"
    assert film_folder(".hidden").startswith(".hidden") and film_folder(".hidden") != ".hidden"
    names = ["cache", "cache~", "cache~~", "tmp", "film", ".x", ".x~"]
    assert len({film_folder(n) for n in names}) == len(names)


HOSTILE_NAMES = ["../../../../../../../../../x/pwned", "/etc/cron.d/x", "..", ".", "a/b", "a\\b", "CON", "nul",
                 "é" * 100, "~", "x" * 300]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_graph_writes_every_shot_inside_the_build_folder_whatever_its_name(tmp_path, name):
    film = tmp_path / "a" / "b" / "film"
    film.mkdir(parents=True)
    text = ('model "dreamshaper_8.safetensors"\nEXT. A - DAY\n'
            f'  shot "{name.replace(chr(92), chr(92) * 2)}" wide 1s\n    action "x"\n')
    (film / "film.story").write_text(text)
    before = listing(tmp_path)
    result = run("graph", film / "film.story", "--object-info", "core")
    no_traceback(result)
    assert result.exit_code == 0, result.output
    after = listing(tmp_path)
    new = [p for p in after if p not in before]
    assert new and all(p.startswith(os.path.join("a", "b", "film", "build")) for p in new), new
    graphs = [p for p in new if p.endswith(".json") and "shot_" in p]
    assert len(graphs) == 1 and "/" not in Path(graphs[0]).name


def test_a_film_named_cache_keeps_its_outputs_through_the_caches_eviction(write_story):
    path = write_story('format 384x216 @ 12fps\n' + SHOT, name="cache.story")
    result = run("build", path, "--preview", "--cache-size", "1")
    assert result.exit_code == 0, result.output
    film_dir = path.parent / "build" / "cache~"
    assert (film_dir / "cache-preview.mp4").is_file() and (film_dir / "timeline.json").is_file()
    assert (film_dir / "cache.srt").is_file()
