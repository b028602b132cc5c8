"""`storyc watch`: a real watchdog observer, real saves, one rebuild per burst, the film replaced atomically."""

import os
import queue
import threading
import time

import pytest

from storylang.build import BuildOptions
from storylang.watch import Watcher

from conftest import processes_using
from test_build import _frame_digests

FILM = '''title "Watch" 0s
format 256x144 @ 12fps

EXT. QUAY - DAWN
  shot 1 wide 2s
    action "boats at their moorings"
  shot 2 close 2s
    action "a rope tightens"
  shot 3 medium 2s
    action "gulls lift off"
'''


@pytest.fixture
def watching(tmp_path):
    script = tmp_path / "film.story"
    script.write_text(FILM)
    lines: queue.Queue = queue.Queue()
    stop = threading.Event()
    watcher = Watcher(script, BuildOptions(jobs=2, preview=True), lines.put, quiet=0.2)
    t = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
    t.start()
    first = lines.get(timeout=60)
    assert first.error is None and first.output.is_file()
    yield script, lines, first
    stop.set()
    t.join(30)
    assert not t.is_alive()


def _next(lines, timeout=30):
    return lines.get(timeout=timeout)


def test_a_save_in_place_rebuilds_only_that_shot(watching):
    script, lines, first = watching
    before_inode, before = os.stat(first.output).st_ino, _frame_digests(first.output)
    script.write_text(FILM.replace("a rope tightens", "a rope snaps"))
    r = _next(lines)
    assert r.error is None and r.changed == ["shot 2 action"]
    assert "picture encoded (1 of 3 segments)" in r.redone
    assert os.stat(r.output).st_ino != before_inode  # replaced by a rename, never rewritten in place
    after = _frame_digests(r.output)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert changed and 24 <= min(changed) and max(changed) < 48  # only shot 2's frames
    assert lines.empty()


def test_an_editors_atomic_save_and_a_burst_of_saves_rebuild_once(watching, tmp_path):
    script, lines, _ = watching
    tmp = tmp_path / ".film.story.swp"
    tmp.write_text(FILM.replace("gulls lift off", "gulls settle"))
    os.replace(tmp, script)  # temp file + rename
    r = _next(lines)
    assert r.changed == ["shot 3 action"]
    script.write_text(FILM.replace("boats at their moorings", "boats rock"))
    time.sleep(0.05)
    script.write_text(FILM.replace("boats at their moorings", "boats drift"))  # 50 ms later: one burst
    r = _next(lines)
    assert r.changed == ["shot 1 action", "shot 3 action"]
    time.sleep(1.0)
    assert lines.empty()  # one rebuild for the burst


def test_a_save_that_changes_nothing_does_nothing_and_errors_keep_the_last_film(watching):
    script, lines, first = watching
    script.write_text(FILM)  # the same bytes
    time.sleep(1.0)
    assert lines.empty()
    script.write_text(FILM.replace("shot 2 close 2s", "shot 2 close on NOBODY 2s"))
    r = _next(lines)
    assert r.error is not None and r.error.diagnostics
    assert first.output.is_file() and _frame_digests(first.output)
    script.write_text(FILM.replace("a rope tightens", "a knot"))
    r = _next(lines)
    assert r.error is None and r.changed == ["shot 2 action"]
    assert first.first and not r.first  # the line says "first build" only of the first


def test_what_changed_is_told_in_film_order_with_a_voice_edit_once_per_speaker():
    from storylang.explain import Record
    from storylang.watch import changes

    def line(speaker, rate):
        return {"where": "f:1", "facts": {"text": "hi", "voice rate": rate, "speaker": speaker}}

    shots = {sid: {"where": "f:1", "facts": {"action": "a"}} for sid in ("2", "10")}
    before = Record(shots=shots, lines={"2:0": line("IDA", "165"), "10:0": line("IDA", "165"),
                                        "10:1": line("TOMAS", "140")})
    after = Record(shots={"2": shots["2"], "10": {"where": "f:9", "facts": {"action": "b"}}},
                   lines={"2:0": line("IDA", "150"), "10:0": line("IDA", "150"), "10:1": line("TOMAS", "120")})
    assert changes(before, after) == ["shot 10 action", "voice rate of IDA (2 lines)", "line 10:1 voice rate"]


def test_a_superseded_build_kills_the_encode_it_is_running(tmp_path):
    """The segment being encoded when a newer edit arrives is stopped within a second, not finished;
    nothing half-written is left and no ffmpeg keeps running."""
    from storylang.build import Superseded, build
    from storylang.progress import Progress

    script = tmp_path / "long.story"
    script.write_text('title "Long" 0s\nformat 1280x720 @ 24fps\n\nEXT. A - DAY\n  shot 1 wide 90s\n'
                      '    camera push in slow\n    narrate "A long, slow push."\n')
    cancel = threading.Event()
    started = {}

    class Watch(Progress):
        def stage(self, name, total):
            if name == "picture":
                started["at"] = time.monotonic()
                threading.Timer(0.8, cancel.set).start()

    with pytest.raises(Superseded):
        build(script, BuildOptions(jobs=2, cancel=cancel), Watch())
    stopped = time.monotonic() - started["at"] - 0.8
    print(f"stopped {stopped:.2f} s after the save")
    assert stopped < 2.0, stopped  # encoding 90 s of 720p takes far longer than that
    leftovers = [p for p in (tmp_path / "build").rglob("*") if p.name.endswith(".part")]
    assert not leftovers
    assert not list((tmp_path / "build" / "cache").glob("segments/*/*.mp4"))
    assert not processes_using(tmp_path)


def test_ctrl_c_stops_watch_during_a_rebuild_leaving_nothing_behind(tmp_path):
    """SIGINT while the full film encodes: exit 130 within seconds, the encoder gone, no partial
    file or scratch folder left, the preview film whole."""
    import signal
    import subprocess
    import sys

    from media import count_frames

    script = tmp_path / "long.story"
    script.write_text('title "Long" 0s\nformat 1280x720 @ 24fps\n\nEXT. A - DAY\n  shot 1 wide 40s\n'
                      '    camera push in slow\n    action "a long, slow push"\n')
    proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "watch", script.name, "--preview"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr.readline().startswith("watching")
        assert "long-preview.mp4" in proc.stderr.readline()  # the preview is done; the full film encodes
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        rest = proc.communicate(timeout=30)[1]
        stopped = time.monotonic() - t0
    finally:
        proc.kill()
    assert proc.returncode == 130 and "stopped watching" in rest, rest
    assert stopped < 5, stopped
    build = tmp_path / "build"
    assert not [p for p in build.rglob("*") if p.name.endswith(".part")]
    assert list((build / "tmp").iterdir()) == []
    assert not (build / "long" / "long.mp4").exists()
    assert not processes_using(tmp_path)
    assert count_frames(build / "long" / "long-preview.mp4") == 960


def test_an_include_added_in_a_new_folder_is_watched_from_then_on(watching):
    """The observer follows the film's inputs: a file included after watch began, in a folder
    that did not exist then, is watched once the script names it."""
    script, lines, first = watching
    cast = script.parent / "parts" / "cast.story"
    cast.parent.mkdir()
    cast.write_text('character MARA\n  look "silver braid"\n  voice "en-us+f3" rate 170\n')
    text = FILM.replace('title "Watch" 0s\n', 'title "Watch" 0s\ninclude "parts/cast.story"\n')
    text = text.replace('    action "a rope tightens"\n', '    action "a rope tightens"\n    MARA: Hold it.\n')
    script.write_text(text)
    r = _next(lines)
    while r.error is None and "1 line spoken" not in r.redone:  # the folder made, then the script saved
        r = _next(lines)
    assert r.error is None, r.error
    cast.write_text(cast.read_text().replace("rate 170", "rate 140"))
    r = _next(lines)
    assert r.error is None and r.changed == ["line 2:0 voice rate"], r.changed
    assert "1 line spoken" in r.redone
