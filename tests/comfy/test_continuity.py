"""`> continue`: a shot's first frame is the last frame of the shot before it, so a chain of shots
renders in order, each reading the render before it, and an edit redoes the chain from there."""

from PIL import Image

from storylang.build import build
from storylang.resolve import resolve_file

from fake_server import FakeComfy, made_by
from test_render import comfy

FILM = '''format 384x216 @ 24fps
model "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"
start still "flux1-dev-fp8.safetensors"
EXT. SEA - DAWN
  shot 1 wide 2s
    action "a wave rises"
  > continue
  shot 2 wide 2s
    action "the wave breaks on the rocks"
  > continue
  shot 3 wide 2s
    action "foam slides back into the sea"
  shot 4 wide 2s
    action "gulls over the water"
'''


def test_a_chain_renders_in_order_each_shot_from_the_last_frame_before_it(tmp_path):
    script = tmp_path / "film.story"
    script.write_text(FILM)
    film, diags, _ = resolve_file(script)
    assert [s.continues for s in film.shots] == [False, True, True, False]
    assert all(s.transition is None for s in film.shots)  # in the edit, a continue is a cut
    server = FakeComfy(version="0.33.0").start()
    try:
        report = build(script, comfy(server, preview=True))
        assert not report.failures, report.failures
        order = [made_by(g) for g in server.graphs_submitted()]
        # each render after what it reads; the longest chain first (1.still, 1, 2, 3 before shot 4's pair)
        assert sorted(order) == ["1", "1.still", "2", "3", "4", "4.still"]
        assert order.index("1.still") < order.index("1") < order.index("2") < order.index("3")
        assert order.index("4.still") < order.index("4") and order[0] == "1.still"
        graphs = {made_by(g): g for g in server.graphs_submitted()}
        first = graphs["2"]["start_image"]["inputs"]["image"]
        assert first.startswith("storylang/last_") and first in server.uploads
        with Image.open(server.dir / "input" / first) as im:
            assert im.size == (384, 224)  # a frame of shot 1's video (216 to Wan's nearest multiple of 16)
        assert not any(w.startswith(("2.", "3.")) for w in graphs)  # continuing shots make no still of their own

        # shot 2's action changes: shot 2 and the shot that continues it, nothing else
        before = len(server.submitted)
        script.write_text(FILM.replace("breaks on the rocks", "crashes over the wall"))
        from storylang.build import BuildOptions

        dry = build(script, BuildOptions(**{**vars(comfy(server, preview=True)), "dry_run": True}))
        why = sorted(r.replace(f"{tmp_path}/", "") for r in dry.reasons if " render:" in r)
        assert why == ["shot 2 render: action changed (film.story:8)",
                       "shot 3 render: first frame (shot 2's last) changed (film.story:11)"]
        report = build(script, comfy(server, preview=True))
        assert not report.failures
        assert [made_by(g) for g in server.graphs_submitted(before)] == ["2", "3"]
    finally:
        server.stop()


def test_continue_needs_a_shot_on_each_side_and_a_video_model(tmp_path, write_story):
    from click.testing import CliRunner

    from storylang.cli import main

    path = write_story('model "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors"\nEXT. A - DAY\n'
                       '  > continue\n  shot 1 wide 2s\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and "> continue goes between two shots" in result.output
    path = write_story('model "flux1-dev-fp8.safetensors"\nEXT. A - DAY\n  shot 1 wide 2s\n  > continue\n'
                       '  shot 2 wide 2s\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and "it continues the shot before it" in result.output


def test_a_build_killed_mid_chain_resumes_without_submitting_anything_twice(tmp_path):
    import json
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "film.story"
    script.write_text(FILM)
    server = FakeComfy(version="0.33.0", node_delay=0.05).start()
    journal = tmp_path / "build" / "film" / "renders.journal.json"

    def state(shot: str) -> str | None:
        try:
            return json.loads(journal.read_text())["shots"].get(shot, {}).get("state")
        except (OSError, ValueError):
            return None

    try:
        proc = subprocess.Popen([sys.executable, "-m", "storylang.cli", "build", str(script), "--comfy", server.url,
                                 "--preview"], env=dict(os.environ, PYTHONPATH=str(root)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while state("2") != "submitted" and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)  # mid-chain: shot 1 done, shot 2 on the server, shot 3 waiting
        proc.wait()
        assert state("1") == "done" and state("2") == "submitted" and state("3") is None
        server.node_delay = 0
        report = build(script, comfy(server, preview=True))
        assert not report.failures, report.failures
        assert len(server.submitted) == len(set(server.submitted)) == 6  # 2 stills, 4 shots: each once
        order = [made_by(g) for g in server.graphs_submitted()]
        assert order.index("2") < order.index("3")
    finally:
        server.stop()
