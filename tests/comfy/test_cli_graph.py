"""`storyc graph` and `storyc check` on graphs, as a user runs them."""

import json
from pathlib import Path

from click.testing import CliRunner

from storylang.cli import main
from storylang.comfy.schema import snapshot, validate

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_graph_writes_one_valid_graph_per_shot_and_an_index(tmp_path):
    result = CliRunner().invoke(main, ["graph", str(EXAMPLES / "everything.story"), "-o", str(tmp_path), "--explain"])
    assert result.exit_code == 0, result.output
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index) == 9 and index["5"]["template"] == "keyframes"
    assert [i["file"] for i in index["5"]["inputs"]] == ["assets/dawn.png", "assets/morning.png"]
    for entry in index.values():
        assert validate(json.loads((tmp_path / entry["graph"]).read_text()), snapshot("full")) == []
    assert "look of MARA" in result.output and "framing" in result.output


def test_graph_errors_name_the_shot_and_its_line(write_story, tmp_path):
    path = write_story('model "m.safetensors"\nsampler euler_typo\nEXT. A - DAY\n  shot 1 wide 2s\n')
    result = CliRunner().invoke(main, ["graph", str(path), "-o", str(tmp_path / "g")])
    assert result.exit_code == 1
    first = result.output.splitlines()[0]
    assert first.startswith(f"{path}:4:3: error: shot 1 (template still): node \"sampler\" (KSampler) input \"sampler_name\"")
    assert not (tmp_path / "g").exists()


def test_check_validates_graphs_of_films_that_name_a_model(write_story):
    path = write_story('model "m.safetensors"\nsteps 20\nEXT. A - DAY\n  shot 1 wide 2s\n    template motoin\n')
    result = CliRunner().invoke(main, ["check", str(path)])
    assert result.exit_code == 1 and 'there is no template "motoin"' in result.output
    assert 'did you mean "motion"?' in result.output


def test_check_against_an_unreachable_server_is_one_clear_line(write_story):
    path = write_story('model "m.safetensors"\nEXT. A - DAY\n  shot 1 wide 2s\n')
    result = CliRunner().invoke(main, ["check", str(path), "--comfy", "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert result.output.startswith("storyc: http://127.0.0.1:9 cannot be reached (")
    assert "is ComfyUI running there?" in result.output and len(result.output.strip().splitlines()) == 1


def test_a_graph_is_as_long_as_its_shot_after_speech_lengthens_it(write_story, tmp_path):
    from storylang.check import check_film

    path = write_story('model "wan2.1_t2v_1.3B_fp16.safetensors"\ntemplate motion\nformat 384x216 @ 16fps\n'
                       'EXT. A - DAY\n  shot 1 wide 1s\n    narrate "one two three four five six seven eight nine ten"\n')
    result = CliRunner().invoke(main, ["graph", str(path), "--object-info", "core", "-o", str(tmp_path / "g")])
    assert result.exit_code == 0, result.output
    frames = check_film(path, graphs=False).timing.shots["1"].frames
    assert frames > 16 * 2  # the narration lengthened the one-second shot
    graph = json.loads((tmp_path / "g" / "shot_1.json").read_text())
    lengths = [n["inputs"]["length"] for n in graph.values() if "length" in n["inputs"]]
    assert lengths and all(frames <= x < frames + 4 for x in lengths)  # Wan renders 4k+1 frames


def test_graphs_are_byte_identical_across_processes_with_different_hash_seeds(tmp_path):
    import os
    import shutil
    import subprocess
    import sys

    shutil.copytree(EXAMPLES, tmp_path / "films", ignore=shutil.ignore_patterns("build"))
    for film, count in (("everything", 11), ("families", 15)):  # graphs (and a still made first), index.json and its provenance
        outputs = []
        for seed in ("1", "2"):
            out = tmp_path / f"{film}-{seed}"
            subprocess.run([sys.executable, "-m", "storylang.cli", "graph", str(tmp_path / "films" / f"{film}.story"),
                            "-o", str(out)], check=True, capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
            outputs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
        assert len(outputs[0]) == count and outputs[0] == outputs[1]
