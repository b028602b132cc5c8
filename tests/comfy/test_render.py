"""`storyc build --comfy`: films rendered on ComfyUI test servers that speak the real protocol."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from storylang.build import BuildFailed, BuildOptions, build
from storylang.cli import main
from storylang.comfy.client import ComfyError, safe_output_name
from storylang.render.comfy import ComfySettings

from conftest import EXAMPLES, ROOT
from fake_server import FakeComfy
from media import count_frames, frame_at

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")

SMALL = '''title "Render Test" 0s
format 256x144 @ 12fps
model "dreamshaper_8.safetensors"  steps 4

EXT. QUAY - DAWN
  shot 1 wide 1s
    action "boats at their moorings"
  shot 2 close 1s
    camera push in
    action "a rope tightens"
  shot 3 medium 1s
    action "gulls lift off"
'''


@pytest.fixture
def server():
    s = FakeComfy(step_delay=0.002).start()
    yield s
    s.stop()


def comfy(*servers, preview=False, **kw) -> BuildOptions:
    settings = ComfySettings(servers=[s.url for s in servers], poll=0.2, backoff=0.05, timeout=5, **kw)
    return BuildOptions(renderer="comfy", comfy=settings, jobs=2, preview=preview)


def copy_example(tmp_path, name: str) -> Path:
    shutil.copytree(EXAMPLES, tmp_path / "ex", ignore=shutil.ignore_patterns("build"))
    return tmp_path / "ex" / f"{name}.story"


def seed_color(seed: int) -> tuple[int, int, int]:
    import hashlib

    return tuple(hashlib.sha256(str(seed).encode()).digest()[:3])


def close(a, b, tol=12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def test_a_film_renders_on_one_server_and_is_cut_from_the_renders(server, write_story, tmp_path):
    script = write_story(SMALL)
    report = build(script, comfy(server))
    timeline = json.loads(report.timeline.read_text())
    assert report.rendered == 3 and report.reused == 0 and not report.failures
    assert count_frames(report.output) == timeline["frames"] == 36
    manifest = json.loads((script.parent / "build" / "film" / "renders.json").read_text())
    assert sorted(manifest["shots"]) == ["1", "2", "3"]
    for clip in timeline["clips"]:
        rec = manifest["shots"][clip["shot"]]
        assert rec["server"] == server.url and rec["comfyui_version"] == "0.3.64"
        assert rec["prompt_id"] in server.executed
        mid = frame_at(report.output, clip["start"] + clip["frames"] // 2, 12, tmp_path / "f.png")
        assert close(mid.getpixel((128, 72)), seed_color(rec["seed"])), clip["shot"]
    assert "renderer comfy" in subprocess.run([sys.executable, "-c", "import sys; print(open(sys.argv[1],'rb')"
                                               ".read().decode('latin-1'))", str(report.output)],
                                              capture_output=True, text=True).stdout
    # the same build again: every render comes from the cache, nothing is submitted
    submitted = list(server.submitted)
    again = build(script, comfy(server))
    assert again.rendered == 0 and again.reused == 3 and server.submitted == submitted


def test_a_killed_build_adopts_what_the_server_already_ran(server, write_story):
    script = write_story(SMALL)
    build(script, comfy(server))
    shutil.rmtree(script.parent / "build" / "cache" / "renders")  # as if the build died before storing them
    submitted = list(server.submitted)
    report = build(script, comfy(server))
    assert report.rendered == 3 and server.submitted == submitted  # fetched from history, not run again


def test_a_model_no_server_has_stops_the_build_with_the_shot_line(write_story):
    s = FakeComfy(models={"checkpoints": []}).start()
    try:
        script = write_story(SMALL)
        with pytest.raises(BuildFailed) as e:
            build(script, comfy(s))
        text = " ".join(d.message + " " + (d.hint or "") for d in e.value.diagnostics)
        assert "dreamshaper_8.safetensors" in text and "models/checkpoints" in text
        assert {d.span.line for d in e.value.diagnostics} == {6, 8, 11}
        assert s.submitted == []  # nothing ran: pre-flight comes before any GPU second
        report = build(script, comfy(s, skip_missing=True))
        assert report.rendered == 0 and any("no server can run" in n for n in report.notes)
        assert count_frames(report.output) == 36
    finally:
        s.stop()


def test_live_check_names_the_files_a_server_lacks(write_story):
    s = FakeComfy(models={"checkpoints": [], "vae": []}).start()
    try:
        script = write_story(SMALL)
        result = CliRunner().invoke(main, ["check", str(script), "--comfy", s.url])
        assert result.exit_code == 1
        assert 'checkpoint "dreamshaper_8.safetensors" is not on' in result.output
        assert "put dreamshaper_8.safetensors in ComfyUI/models/checkpoints/" in result.output
    finally:
        s.stop()


def test_an_execution_error_is_reported_in_the_writers_terms_and_the_film_is_still_cut(write_story):
    s = FakeComfy(fail={"KSampler": "Allocation on device 0 would exceed allowed memory. (out of memory)"}).start()
    try:
        script = write_story(SMALL)
        result = CliRunner().invoke(main, ["build", str(script), "--comfy", s.url])
        assert result.exit_code == 1, result.output
        assert "film.story:6" in result.output and "KSampler" in result.output
        assert "--jobs 1 for that server" in result.output  # the out-of-memory hint
        assert "3 shots failed to render" in result.output
        assert count_frames(script.parent / "build" / "film" / "film.mp4") == 36
        with pytest.raises(BuildFailed):
            build(script, comfy(s, strict=True))
    finally:
        s.stop()


def test_the_22_shot_example_builds_through_one_server(tmp_path):
    script = copy_example(tmp_path, "harbour")
    s = FakeComfy().start()
    try:
        report = build(script, comfy(s, preview=True))
        timeline = json.loads(report.timeline.read_text())
        assert not report.failures and report.rendered == 22 and len(s.executed) == 22
        assert count_frames(report.output) == timeline["frames"]
        assert all("renders" in c["files"][0] for c in timeline["clips"] if c["shot"][0] != "#")
    finally:
        s.stop()


def test_a_pool_of_three_builds_the_22_shot_example_with_one_server_killed(tmp_path):
    script = copy_example(tmp_path, "harbour")
    servers = [FakeComfy(node_delay=0.01, step_delay=0.004).start() for _ in range(3)]
    victim = servers[1]

    def kill_after_first():
        while not victim.executed:
            time.sleep(0.01)
        victim.stop()

    killer = threading.Thread(target=kill_after_first, daemon=True)
    killer.start()
    try:
        report = build(script, comfy(*servers, preview=True))
        killer.join(5)
        timeline = json.loads(report.timeline.read_text())
        assert not report.failures and report.rendered == 22
        assert count_frames(report.output) == timeline["frames"]
        assert any(n.startswith(f"ComfyUI server lost during the build: {victim.url}") for n in report.notes), \
            report.notes
        manifest = json.loads((script.parent / "build" / "harbour" / "renders.json").read_text())
        used = {rec["server"] for rec in manifest["shots"].values()}
        assert len(manifest["shots"]) == 22 and {servers[0].url, servers[2].url} <= used
        survivors = servers[0].executed + servers[2].executed
        assert len(survivors) == len(set(survivors))  # no shot ran twice on the servers that stayed up
        assert {rec["prompt_id"] for rec in manifest["shots"].values()} <= set(survivors) | set(victim.executed)
    finally:
        for s in servers:
            s.stop()


def test_a_server_restarted_mid_shot_with_an_empty_history_gets_the_shot_again(write_story):
    s = FakeComfy(step_delay=0.05).start()
    try:
        script = write_story(SMALL.replace("steps 4", "steps 20"))

        def restart_when_running():
            while not s.running:
                time.sleep(0.005)
            s.restart()

        t = threading.Thread(target=restart_when_running, daemon=True)
        t.start()
        report = build(script, comfy(s, max_failures=8))  # a loaded machine may take a while to restart it
        t.join(5)
        assert report.rendered == 3 and not report.failures
        assert len(s.executed) == 3  # the lost shot was submitted again after the restart
    finally:
        s.stop()


def test_a_dropped_websocket_is_survived(write_story):
    s = FakeComfy(drop_nodes={"VAEDecode"}).start()
    try:
        report = build(write_story(SMALL), comfy(s))
        assert report.rendered == 3 and not report.failures
    finally:
        s.stop()


def test_motion_keyframes_and_restyle_shots_render_as_videos_of_the_shot_length(tmp_path):
    script = copy_example(tmp_path, "everything")
    s = FakeComfy().start()
    try:
        report = build(script, comfy(s, preview=True))
        assert not report.failures, report.failures
        timeline = json.loads(report.timeline.read_text())
        videos = [c for c in timeline["clips"] if c["source"] == "video" and "renders" in c["files"][0]]
        assert videos, "the motion shots come back as video renders"
        motion = [c for c in videos if c["shot"] == "4"]  # AnimateDiff + RIFE: exactly the shot's frames
        assert motion and count_frames(script.parent / motion[0]["files"][0]) == motion[0]["frames"]
        # Wan renders at 16 fps: conformed to the film's rate, and the summary says how
        assert any(n.startswith("shot 5: the render lasts") for n in report.notes), report.notes
        assert count_frames(report.output) == timeline["frames"]
        assert any(u.endswith(".mp4") for u in s.uploads)  # the trimmed source clip
    finally:
        s.stop()


def test_credentials_come_from_the_environment_and_are_never_written(write_story, monkeypatch):
    s = FakeComfy(token="s3cret-token").start()
    try:
        script = write_story(SMALL)
        with pytest.raises(ComfyError) as e:
            build(script, comfy(s))
        assert "HTTP 401" in str(e.value) and "s3cret" not in str(e.value)
        monkeypatch.setenv("STORYC_COMFY_TOKEN", "s3cret-token")
        report = build(script, comfy(s))
        assert report.rendered == 3
        for path in (script.parent / "build").rglob("*"):
            if path.is_file():
                assert b"s3cret" not in path.read_bytes(), path
    finally:
        s.stop()


def test_output_names_that_could_escape_the_cache_are_refused():
    for bad in ("../x.png", "/etc/passwd", "a\x00b.png", "x" * 256 + ".png", ".."):
        with pytest.raises(ComfyError):
            safe_output_name({"filename": bad, "subfolder": "", "type": "output"})
    with pytest.raises(ComfyError):
        safe_output_name({"filename": "ok.png", "subfolder": "../../etc", "type": "output"})
    assert safe_output_name({"filename": "ok.png", "subfolder": "a/b", "type": "output"}) == ("ok.png", "a/b", "output")


def test_servers_come_from_flags_then_environment_then_storyc_toml(write_story, monkeypatch, server):
    script = write_story(SMALL, **{"storyc.toml": f'[comfy]\nservers = ["{server.url}"]\ninflight = 1\n'})
    monkeypatch.delenv("STORYC_COMFY", raising=False)
    result = CliRunner().invoke(main, ["build", str(script)])
    assert result.exit_code == 0, result.output
    assert "3 rendered" in result.output
    monkeypatch.setenv("STORYC_COMFY", "http://127.0.0.1:9")  # nothing listens there
    result = CliRunner().invoke(main, ["build", str(script)])
    assert result.exit_code == 1 and "cannot be reached" in result.output and "Traceback" not in result.output
    result = CliRunner().invoke(main, ["build", str(script), "--renderer", "animatic"])
    assert result.exit_code == 0 and "3 shots: " in result.output  # cards drawn, or reused from a cut between


def test_ctrl_c_cancels_only_our_prompts_and_a_rerun_submits_nothing_twice(write_story):
    s = FakeComfy(step_delay=0.2).start()
    try:
        script = write_story(SMALL.replace("steps 4", "steps 30"))
        # someone else's prompt, queued behind ours
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", str(script), "--comfy", s.url],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while not (s.running and len(s.queue) >= 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        foreign = _submit_foreign(s)
        proc.send_signal(signal.SIGINT)
        out = proc.communicate(timeout=30)[0].decode()
        assert proc.returncode == 130, out
        assert "Traceback" not in out
        ours = set(s.submitted) - {foreign}
        assert s.interrupted and set(s.interrupted) <= ours, (out, s.submitted, s.interrupted, s.deleted)
        assert set(s.deleted) <= ours and foreign not in s.deleted
        assert any(item[1] == foreign for item in s.queue) or foreign == s.running or foreign in s.history
        s.step_delay = 0.002
        report = build(script, comfy(s))
        assert report.rendered == 3
        done = [pid for pid in s.executed if pid != foreign]
        assert len(done) == len(set(done)) == 3  # every shot ran to the end exactly once
    finally:
        s.stop()


def _submit_foreign(s: FakeComfy) -> str:
    import urllib.request

    graph = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
             "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    req = urllib.request.Request(s.url + "/prompt", data=json.dumps({"prompt": graph, "client_id": "someone"}).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.loads(resp.read())["prompt_id"]


def test_a_server_without_a_pack_only_gets_shots_its_graphs_can_run(tmp_path):
    script = copy_example(tmp_path, "everything")
    full = FakeComfy().start()
    bare = FakeComfy(without={"pack:custom_nodes.ComfyUI-VideoHelperSuite"}).start()
    try:
        report = build(script, comfy(full, bare, preview=True))
        assert not report.failures
        manifest = json.loads((script.parent / "build" / "everything" / "renders.json").read_text())
        assert manifest["shots"]["4"]["server"] == full.url  # the AnimateDiff shot saves with VHS_VideoCombine
        assert any(rec["server"] == bare.url for rec in manifest["shots"].values())
    finally:
        full.stop()
        bare.stop()


def test_a_build_killed_hard_is_resumed_by_adopting_its_queued_prompts(write_story):
    s = FakeComfy(step_delay=0.1).start()
    try:
        script = write_story(SMALL.replace("steps 4", "steps 10"))
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", str(script), "--comfy", s.url],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal_file = script.parent / "build" / "film" / "renders.journal.json"

        def submitted() -> int:
            try:
                entries = json.loads(journal_file.read_text())["shots"].values()
            except (OSError, ValueError):
                return 0
            return sum(e["state"] == "submitted" for e in entries)

        deadline = time.monotonic() + 60
        while submitted() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.kill()
        proc.wait()
        assert submitted() >= 2
        s.step_delay = 0.005
        report = build(script, comfy(s))
        assert report.rendered == 3 and not report.failures
        # the prompts queued by the killed build were adopted, not submitted again
        assert len(s.submitted) == len(set(s.submitted)) == 3, s.submitted
    finally:
        s.stop()


def test_a_shot_times_out_on_missing_progress_not_on_wall_clock(write_story):
    alive = FakeComfy(step_delay=0.25).start()  # 10 steps: 2.5 s, each step well inside the stall window
    try:
        report = build(write_story(SMALL.replace("steps 4", "steps 10")), comfy(alive, stall=1.0, inflight=1))
        assert report.rendered == 3 and not report.failures
    finally:
        alive.stop()
    stuck = FakeComfy(step_delay=30).start()  # no step for 30 s: nothing says it is alive
    try:
        with pytest.raises(ComfyError) as e:
            build(write_story(SMALL), comfy(stuck, stall=0.5, inflight=1))
        assert "no ComfyUI server is left" in str(e.value) and "no progress" in str(e.value)
    finally:
        stuck.stop()


def test_an_output_larger_than_the_limit_is_cut_off(write_story, monkeypatch):
    import storylang.render.comfy as comfy_mod

    monkeypatch.setattr(comfy_mod, "IMAGE_LIMIT", 100)  # bytes: every PNG of the test server is larger
    s = FakeComfy().start()
    try:
        script = write_story(SMALL)
        report = build(script, comfy(s))
        assert len(report.failures) == 3
        assert all("more than" in d.message and "cut off" in d.message for d in report.failures)
        assert not list((script.parent / "build" / "cache").glob("renders/*/*.png"))
    finally:
        s.stop()


def test_a_save_during_a_comfy_build_withdraws_our_stale_prompts(write_story):
    import queue as queue_mod

    from storylang.watch import Watcher

    s = FakeComfy(step_delay=0.2).start()
    try:
        script = write_story(SMALL.replace("steps 4", "steps 20"))
        lines = queue_mod.Queue()
        stop = threading.Event()
        watcher = Watcher(script, comfy(s), lines.put, quiet=0.2)
        t = threading.Thread(target=watcher.run, args=(stop,), daemon=True)
        t.start()
        deadline = time.monotonic() + 30
        while not (s.running and s.queue) and time.monotonic() < deadline:
            time.sleep(0.02)
        script.write_text(SMALL.replace("steps 4", "steps 21"))  # every graph changes
        while not s.interrupted and time.monotonic() < deadline:
            time.sleep(0.02)
        s.step_delay = 0.002
        r = lines.get(timeout=60)
        stop.set()
        t.join(30)
        assert r.error is None and "3 renders" in r.redone
        manifest = json.loads((script.parent / "build" / "film" / "renders.json").read_text())
        stale = set(s.submitted) - {rec["prompt_id"] for rec in manifest["shots"].values()}
        assert s.interrupted and set(s.interrupted) <= stale  # the running one interrupted
        assert s.deleted and set(s.deleted) <= stale  # the queued ones withdrawn
    finally:
        s.stop()


def test_a_dead_server_in_the_pool_is_named_and_the_rest_render(server, write_story):
    settings = ComfySettings(servers=[server.url, "http://127.0.0.1:9"], poll=0.2, backoff=0.05, timeout=5)
    report = build(write_story(SMALL), BuildOptions(renderer="comfy", comfy=settings, jobs=2))
    assert report.rendered == 3 and not report.failures
    assert any(n.startswith("ComfyUI server set aside: http://127.0.0.1:9 cannot be reached") for n in report.notes)


def test_a_render_plan_names_the_setting_lora_or_template_that_changed(server, write_story):
    text = SMALL.replace('  shot 2 close 1s\n', '  shot 2 close 1s\n    lora "mara_v2.safetensors" 0.8\n')
    script = write_story(text)
    build(script, comfy(server))

    def reasons(new_text: str) -> list[str]:
        script.write_text(new_text)
        report = build(script, BuildOptions(**{**vars(comfy(server)), "dry_run": True}))
        return [r.replace(f"{script.parent}/", "") for r in report.reasons if " render:" in r]

    assert reasons(text.replace('"mara_v2.safetensors" 0.8', '"mara_v2.safetensors" 0.6')) == \
        ["shot 2 render: LoRA mara_v2.safetensors changed (film.story:8)"]
    assert reasons(text.replace("steps 4", "steps 6")) == \
        [f"shot {n} render: steps changed (film.story:{line})" for n, line in (("1", 6), ("2", 8), ("3", 12))]
    graphs = script.parent / "templates" / "graphs"
    graphs.mkdir(parents=True)
    source = (ROOT / "templates" / "graphs" / "still.json.j2").read_text()
    (graphs / "still.json.j2").write_text(source.replace('"batch_size": 1', '"batch_size": 2'))
    assert reasons(text) == [f"shot {n} render: template file changed (film.story:{line})"
                             for n, line in (("1", 6), ("2", 8), ("3", 12))]


def test_todays_comfyui_renders_every_kind_of_shot_and_is_followed_through_its_jobs_api(tmp_path):
    # 0.33.0's node list (SaveVideo's format is a dynamic combo), its jobs API and its UUID rule
    script = copy_example(tmp_path, "everything")
    s = FakeComfy(version="0.33.0").start()
    try:
        report = build(script, comfy(s, preview=True))
        assert not report.failures, report.failures
        timeline = json.loads(report.timeline.read_text())
        assert any(c["source"] == "video" and "renders" in c["files"][0] for c in timeline["clips"])
        assert count_frames(report.output) == timeline["frames"]
        assert getattr(s, "job_questions", 0) > 0
    finally:
        s.stop()


def test_a_node_type_todays_server_lacks_is_named_with_its_class(write_story):
    from storylang.comfy.run import describe_node_errors

    body = {"error": {"type": "missing_node_type", "message": "Node 'Foo' not found. The custom node may not be "
                      "installed.", "details": "Node ID '#7'",
                      "extra_info": {"node_id": "7", "class_type": "FooNode", "node_title": "Foo"}}, "node_errors": {}}
    text, hint = describe_node_errors(body, {"7": {"class_type": "FooNode"}})
    assert text == 'FooNode (node "7") is not installed on the server' and "custom node pack" in hint


def test_a_lora_the_server_lacks_is_reported_at_the_lora_line(write_story):
    s = FakeComfy(models={"loras": ["other.safetensors"]}).start()
    try:
        script = write_story(SMALL.replace('model "dreamshaper_8.safetensors"  steps 4',
                                           'model "dreamshaper_8.safetensors"  steps 4\nlora "ink_style.safetensors" 0.7'))
        result = CliRunner().invoke(main, ["check", str(script), "--comfy", s.url])
        assert result.exit_code == 1
        line = next(ln for ln in result.output.splitlines() if 'LoRA "ink_style.safetensors" is not on' in ln)
        assert line.startswith(f"{script}:4:6: error:"), result.output
    finally:
        s.stop()


FILL = '''format 384x216 @ 24fps
model "dreamshaper_8.safetensors"
EXT. HARBOUR - DAY
  shot 1 wide 2s
    action "boats on the water"
  shot 2 wide 2s
    action "a gull on a post"
  shot 3 wide 2s
    action "nets drying"
'''


def test_the_film_fills_in_while_it_renders(tmp_path):
    """Cut from cards at once, cut again as renders land, each cut whole; the last is all renders."""
    script = tmp_path / "film.story"
    script.write_text(FILL)
    out = tmp_path / "film.mp4"
    timeline = tmp_path / "build" / "film" / "timeline.json"
    s = FakeComfy(prompt_delay=1.5).start()
    seen: dict[tuple, Path] = {}  # which shots were renders in a cut → a copy of that cut

    def rendered_shots() -> tuple | None:
        try:
            clips = json.loads(timeline.read_text())["clips"]
        except (OSError, ValueError, KeyError):
            return None
        return tuple(c["shot"] for c in clips if any("/renders/" in f for f in c["files"]))

    def watch_cuts(done: threading.Event) -> None:
        while not done.is_set():
            before = rendered_shots()
            if before is not None and before not in seen and out.is_file():
                copy = tmp_path / f"cut{len(seen)}.mp4"
                shutil.copyfile(out, copy)
                if rendered_shots() == before and len(s.executed) < 3:
                    seen[before] = copy
            time.sleep(0.02)

    done = threading.Event()
    t = threading.Thread(target=watch_cuts, args=(done,), daemon=True)
    t.start()
    try:
        report = build(script, BuildOptions(**{**vars(comfy(s, inflight=1)), "output": out, "fill_in": 0.2}))
    finally:
        done.set()
        t.join(5)
        s.stop()
    assert not report.failures and report.rendered == 3
    assert () in seen, f"no cut from cards alone before the renders: {list(seen)}"
    partial = [k for k in seen if 0 < len(k) < 3]
    assert partial, f"no cut with some renders landed and others not: {list(seen)}"
    assert rendered_shots() == ("1", "2", "3")
    # frames change where renders land: shot 1's middle frame in the cards-only cut and in the film
    cards = frame_at(seen[()], 24, 24, tmp_path / "a.png")
    final = frame_at(out, 24, 24, tmp_path / "b.png")
    assert cards.getpixel((10, 10)) != final.getpixel((10, 10))
    landed = frame_at(seen[partial[0]], 24 + 48 * (int(partial[0][0]) - 1), 24, tmp_path / "c.png")
    assert close(landed.getpixel((192, 108)), frame_at(out, 24 + 48 * (int(partial[0][0]) - 1), 24,
                                                         tmp_path / "d.png").getpixel((192, 108)), tol=24)
    assert count_frames(seen[()]) == count_frames(out)  # every cut is the whole film
