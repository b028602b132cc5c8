"""After kill -9, nothing half-written survives: the next build or `storyc clean` removes it."""

import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from storylang import builddir
from storylang.cli import main

from conftest import processes_using

SCRIPT = 'format 640x360 @ 24fps\nEXT. A - DAY\n' + ''.join(
    f'  shot {i} wide 4s\n    camera pan left\n    action "shot {i}"\n' for i in range(1, 9))


def _start_and_kill(path):
    """Start a build, and kill -9 it once it has a partial file on disk."""
    proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", str(path), "-j", "1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    build = path.parent / "build"
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if builddir.leftovers(build) == [] and list(build.rglob("*.part")) and list(build.glob("tmp/*")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the build ended before it could be killed"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    time.sleep(0.2)  # let the encoder notice its pipes closed
    return builddir.leftovers(build)


def test_a_killed_builds_partial_files_are_removed_by_clean_and_by_the_next_build(write_story):
    path = write_story(SCRIPT)
    left = _start_and_kill(path)
    assert any(p.name.endswith(".part") for p in left) and any(p.parent.name == "tmp" for p in left)
    result = CliRunner().invoke(main, ["clean", str(path)])
    assert result.exit_code == 0 and "removed" in result.output
    assert builddir.leftovers(path.parent / "build") == []
    assert not list((path.parent / "build").rglob("*.part"))

    import shutil

    shutil.rmtree(path.parent / "build" / "cache" / "segments", ignore_errors=True)  # a long build again
    assert _start_and_kill(path)
    result = CliRunner().invoke(main, ["build", str(path), "--preview"])
    assert result.exit_code == 0, result.output
    assert not list((path.parent / "build").rglob("*.part"))
    assert list((path.parent / "build" / "tmp").iterdir()) == []


def test_clean_all_removes_the_build_directory(write_story):
    path = write_story('format 384x216 @ 12fps\nEXT. A - DAY\n  shot 1 wide 1s\n')
    assert CliRunner().invoke(main, ["build", str(path), "--preview"]).exit_code == 0
    result = CliRunner().invoke(main, ["clean", str(path), "--all"])
    assert result.exit_code == 0
    assert not (path.parent / "build").exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_build_alone_stops_its_encoders_at_once(write_story, sig):
    """Ctrl-C from a terminal reaches ffmpeg too; `kill -INT` (an IDE's stop button) or SIGTERM (a
    process manager, CI cancelling) reaches only storyc, which must stop the encoders it runs
    instead of waiting for them to finish or leaving them running."""
    path = write_story('format 1280x720 @ 24fps\nEXT. A - DAY\n  shot 1 wide 40s\n    camera push in slow\n'
                       '  shot 2 wide 40s\n    camera pan left\n')
    proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    build = path.parent / "build"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(build.rglob("segments/*/*.part")):
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(sig)
    t0 = time.monotonic()
    err = proc.communicate(timeout=60)[1]
    stopped = time.monotonic() - t0
    assert proc.returncode == 130 and "interrupted" in err, err
    assert stopped < 5, stopped  # encoding the two 40 s shots takes far longer
    assert not [p for p in build.rglob("*") if p.name.endswith(".part")]
    assert list((build / "tmp").iterdir()) == []
    assert not processes_using(path.parent)


def test_a_second_build_of_the_same_film_says_who_holds_it_and_waits(write_story):
    path = write_story('format 640x360 @ 24fps\nEXT. A - DAY\n' + ''.join(
        f'  shot {i} wide 4s\n    camera pan left\n    action "shot {i}"\n' for i in range(1, 5)))
    build = path.parent / "build"
    first = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not list(build.rglob("segments/*/*.part")):
        time.sleep(0.05)
    second = subprocess.run([sys.executable, "-m", "storylang.cli", "build", str(path)],
                            capture_output=True, text=True, timeout=120)
    first.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, second.stderr
    assert f"film is being built by storyc (pid {first.pid}); waiting for it to finish" in second.stderr
    assert "up to date" in second.stderr  # it found the first build's film, and did nothing again
    from media import count_frames

    assert count_frames(build / "film" / "film.mp4") == 16 * 24
