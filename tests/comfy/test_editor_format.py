"""`storyc template import`: the official editor-format workflows convert to valid API graphs."""

import copy
import json
from importlib import resources

import pytest
from click.testing import CliRunner

from storylang.cli import main
from storylang.comfy.editor_format import ImportProblem, convert
from storylang.comfy.schema import validate
from storylang.comfy.schema import snapshot as shipped


def snapshot(name: str):
    """The workflows of comfyui-workflow-templates 0.1.95 were saved from ComfyUI 0.3.x editors."""
    return shipped(name, "0.3.64")

TEMPLATES = resources.files("comfyui_workflow_templates") / "templates"
# Saved with older versions of paid API nodes whose inputs have since been reordered: their
# widget values no longer line up with the node's inputs (the editor shows them shifted too).
SCHEMA_DRIFT = {"api_moonvalley_video_to_video_motion_transfer.json",
                "api_moonvalley_video_to_video_pose_control.json", "api_rodin_gen2.json"}


def workflows():
    for p in sorted(TEMPLATES.iterdir(), key=lambda p: p.name):
        if p.name.endswith(".json") and not p.name.startswith("index"):
            data = json.loads(p.read_text(encoding="utf-8"))
            if "nodes" in data:
                yield p.name, data


@pytest.mark.parametrize("name", ["core", "full"])
def test_official_workflows_whose_nodes_exist_convert_and_validate(name):
    info = snapshot(name)
    converted = rejected = 0
    failures = {}
    for fname, data in workflows():
        try:
            result = convert(data, info)
        except ImportProblem:
            rejected += 1  # uses node types this snapshot does not have (subgraphs, other packs)
            continue
        problems = validate(result.graph, info)
        if problems and fname not in SCHEMA_DRIFT:
            failures[fname] = [p.text() for p in problems[:2]]
        converted += 1
    assert failures == {}
    assert converted >= 150


def test_seeds_control_values_and_links_are_mapped():
    data = json.loads((TEMPLATES / "default.json").read_text())
    graph = convert(data, snapshot("core")).graph
    ks = next(n for n in graph.values() if n["class_type"] == "KSampler")
    assert ks["inputs"]["seed"] == 156680208700286 and ks["inputs"]["steps"] == 20
    assert ks["inputs"]["sampler_name"] == "euler" and ks["inputs"]["denoise"] == 1
    assert isinstance(ks["inputs"]["model"], list)


def _default():
    return json.loads((TEMPLATES / "default.json").read_text())


def test_a_deleted_node_is_reported():
    data = _default()
    data["nodes"] = [n for n in data["nodes"] if n["type"] != "EmptyLatentImage"]
    problems = validate(convert(data, snapshot("core")).graph, snapshot("core"))
    assert ("latent_image", "required_input_missing") in [(p.input, p.code) for p in problems]


def test_a_link_of_the_wrong_type_is_reported():
    data = _default()
    ks = next(n for n in data["nodes"] if n["type"] == "KSampler")
    latent_link = next(i["link"] for i in ks["inputs"] if i["name"] == "latent_image")
    pos_link = next(i["link"] for i in ks["inputs"] if i["name"] == "positive")
    for i in ks["inputs"]:
        if i["name"] == "latent_image":
            i["link"] = pos_link
    problems = validate(convert(data, snapshot("core")).graph, snapshot("core"))
    assert [(p.input, p.code) for p in problems] == [("latent_image", "return_type_mismatch")]
    del latent_link


def test_an_out_of_range_number_is_reported():
    data = _default()
    next(n for n in data["nodes"] if n["type"] == "KSampler")["widgets_values"][2] = 0
    problems = validate(convert(data, snapshot("core")).graph, snapshot("core"))
    assert [(p.input, p.code) for p in problems] == [("steps", "value_smaller_than_min")]


def test_muted_and_bypassed_nodes_and_reroutes():
    data = _default()
    # put a reroute between the checkpoint and the sampler's model input
    ks = next(n for n in data["nodes"] if n["type"] == "KSampler")
    model_in = next(i for i in ks["inputs"] if i["name"] == "model")
    old = next(link for link in data["links"] if link[0] == model_in["link"])
    data["nodes"].append({"id": 99, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 900}],
                          "outputs": [{"name": "", "type": "MODEL", "links": [901]}]})
    data["links"].append([900, old[1], old[2], 99, 0, "MODEL"])
    data["links"].append([901, 99, 0, ks["id"], old[4], "MODEL"])
    model_in["link"] = 901
    graph = convert(data, snapshot("core")).graph
    ks_api = graph[str(ks["id"])]
    assert ks_api["inputs"]["model"] == [str(old[1]), old[2]]
    assert validate(graph, snapshot("core")) == []


def test_cli_import_writes_a_valid_graph(tmp_path):
    src = tmp_path / "wf.json"
    src.write_text((TEMPLATES / "default.json").read_text())
    out = tmp_path / "templates" / "graphs" / "mine.json"
    result = CliRunner().invoke(main, ["template", "import", str(src), "-o", str(out), "--object-info", "core"])
    assert result.exit_code == 0, result.output
    assert validate(json.loads(out.read_text()), snapshot("core")) == []
    broken = copy.deepcopy(json.loads(src.read_text()))
    next(n for n in broken["nodes"] if n["type"] == "KSampler")["widgets_values"][2] = 0
    src.write_text(json.dumps(broken))
    bad = CliRunner().invoke(main, ["template", "import", str(src), "-o", str(tmp_path / "x.json")])
    assert bad.exit_code == 1 and "below the minimum 1" in bad.output
    assert not (tmp_path / "x.json").exists()
