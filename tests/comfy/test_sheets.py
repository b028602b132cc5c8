"""Character sheets: renders that other renders read. A sheet is rendered first, every shot the
character is in frame for uses it as the character's reference, and an edit redoes exactly the
renders downstream of it."""

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from storylang.build import build
from storylang.cli import main

from fake_server import FakeComfy, made_by
from test_render import comfy

FILM = '''format 384x216 @ 24fps
model "dreamshaper_8.safetensors"
character MARA
  look "woman in her sixties, silver braid, yellow raincoat"
  sheet
character TOM
  look "old man, grey moustache, peaked cap"
  sheet "front view, three-quarter, plain background"
EXT. HARBOUR - DAY
  shot 1 close on MARA 2s
    action "she reads the tide table"
  shot 2 wide on MARA and TOM 2s
    action "they walk the harbour wall"
  shot 3 close on TOM 2s
    action "he lights his pipe"
  shot 4 wide 2s
    action "boats on the water"
'''


def test_sheets_render_first_and_every_shot_of_the_character_uses_its_sheet(tmp_path):
    script = tmp_path / "film.story"
    script.write_text(FILM)
    server = FakeComfy(version="0.33.0").start()
    try:
        report = build(script, comfy(server, preview=True))
        assert not report.failures, report.failures
        graphs = server.graphs_submitted()
        assert len(graphs) == 6 and sorted(made_by(g) for g in graphs[:2]) == ["sheet.MARA", "sheet.TOM"]  # first
        sheets = {made_by(g).removeprefix("sheet."): g for g in graphs[:2]}
        shots = {made_by(g): g for g in graphs[2:]}
        refs = {sid: sorted(n["inputs"]["image"] for n in g.values() if n.get("_meta", {}).get("title", "").startswith("reference of"))
                for sid, g in shots.items()}
        assert [len(refs[s]) for s in ("1", "2", "3", "4")] == [1, 2, 1, 0]
        assert set(refs["2"]) == set(refs["1"]) | set(refs["3"]) and refs["1"] != refs["3"]
        assert all(name in server.uploads for name in refs["2"])  # each sheet uploaded once it was made
        assert "front view, three-quarter" in sheets["TOM"]["positive"]["inputs"]["text"]
        renders = json.loads((report.timeline.parent / "renders.json").read_text())
        assert sorted(renders["shots"]["2"]["made_first"]) == ["sheet.MARA", "sheet.TOM"]
        # the build leaves the sheets where storyc board finds them, as storyc sheets does
        assert sorted(p.name for p in (report.timeline.parent / "sheets").iterdir()) == ["MARA.png", "TOM.png"]

        # MARA's look changes: her sheet and her two shots are made again, nothing else
        before = len(server.submitted)
        script.write_text(FILM.replace("silver braid", "white braid"))
        from storylang.build import BuildOptions

        dry = build(script, BuildOptions(**{**vars(comfy(server, preview=True)), "dry_run": True}))
        why = sorted(r.replace(f"{tmp_path}/", "") for r in dry.reasons if " render:" in r)
        assert why == ["shot 1 render: look of MARA, sheet of MARA changed (film.story:10)",
                       "shot 2 render: look of MARA, sheet of MARA changed (film.story:12)"]
        report = build(script, comfy(server, preview=True))
        again = server.graphs_submitted(before)
        assert len(again) == 3 and made_by(again[0]) == "sheet.MARA"
        assert sorted(made_by(g) for g in again[1:]) == ["1", "2"]

        # shot 3's action changes: shot 3 alone
        before = len(server.submitted)
        script.write_text(FILM.replace("silver braid", "white braid").replace("lights his pipe", "coils a rope"))
        build(script, comfy(server, preview=True))
        assert [made_by(g) for g in server.graphs_submitted(before)] == ["3"]
    finally:
        server.stop()


def test_a_failed_sheet_makes_its_characters_shots_cards_with_the_reason(tmp_path):
    # the project's own sheet template (overriding the built-in one) runs a node that fails here
    graphs = tmp_path / "templates" / "graphs"
    graphs.mkdir(parents=True)
    still = (Path(__file__).resolve().parents[2] / "templates" / "graphs" / "still.json.j2").read_text()
    (graphs / "sheet.json.j2").write_text(still.replace(
        '"save": {"class_type": "SaveImage", "inputs": {"images": ["decode", 0]',
        '"invert": {"class_type": "ImageInvert", "inputs": {"image": ["decode", 0]}},\n'
        '"save": {"class_type": "SaveImage", "inputs": {"images": ["invert", 0]'))
    script = tmp_path / "film.story"
    script.write_text(FILM)
    server = FakeComfy(version="0.33.0", fail={"ImageInvert": "out of memory"}).start()
    try:
        report = build(script, comfy(server, preview=True))
        failed = sorted(d.message for d in report.failures)
        assert len(failed) == 3, failed  # shots 1, 2, 3 read a sheet; shot 4 rendered
        assert all("sheet failed: " in m and "out of memory" in m for m in failed)
        assert any("shot 1 failed" in m and "MARA's sheet failed" in m for m in failed), failed
        assert any("3 failed (3 of them read a render that failed)" in n for n in report.notes), report.notes
        assert [n for n in report.notes if "drawn as an animatic card" in n] == [
            f"shot {s}: drawn as an animatic card (its render failed)" for s in ("1", "2", "3")]
    finally:
        server.stop()


def test_a_writers_reference_wins_over_a_sheet_and_graph_writes_the_sheets(tmp_path):
    shutil.copy(Path(__file__).resolve().parents[2] / "examples" / "assets" / "mara_reference.png", tmp_path / "m.png")
    script = tmp_path / "film.story"
    script.write_text(FILM.replace('  sheet\n', '  sheet\n  reference "m.png"\n', 1))
    result = CliRunner().invoke(main, ["graph", str(script), "-o", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "g").iterdir())
    assert [n for n in names if "sheet" in n] == [n for n in names if n.startswith("shot_sheet_TOM")]
    index = json.loads((tmp_path / "g" / "index.json").read_text())
    assert {i.get("made_by") for i in index["3"]["inputs"]} == {"sheet.TOM"}
    assert [i["file"] for i in index["1"]["inputs"]] == ["m.png"]


def test_storyc_sheets_renders_only_the_sheets_and_a_build_reuses_them(tmp_path):
    from PIL import Image

    script = tmp_path / "film.story"
    script.write_text(FILM)
    server = FakeComfy(version="0.33.0").start()
    try:
        result = CliRunner().invoke(main, ["sheets", str(script), "--comfy", server.url])
        assert result.exit_code == 0, result.output
        assert sorted(made_by(g) for g in server.graphs_submitted()) == ["sheet.MARA", "sheet.TOM"]  # no shot rendered
        out = tmp_path / "build" / "film" / "sheets"
        assert sorted(p.name for p in out.iterdir()) == ["MARA.png", "TOM.png"]
        with Image.open(out / "MARA.png") as im:
            assert im.size == (384, 216)
        before = len(server.submitted)
        report = build(script, comfy(server, preview=True))
        assert not report.failures
        assert sorted(made_by(g) for g in server.graphs_submitted(before)) == ["1", "2", "3", "4"]  # the sheets came from the cache
        # a film without sheets says so in one line at the script
        script.write_text(FILM.replace("  sheet\n", "").replace('  sheet "front view, three-quarter, plain background"\n', ""))
        result = CliRunner().invoke(main, ["sheets", str(script), "--comfy", server.url])
        assert result.exit_code == 1 and "no character of this film has a sheet to render" in result.output
    finally:
        server.stop()
