"""Validation finds what the server would reject, and what it would silently get wrong."""

import copy

import pytest

from storylang.comfy.schema import snapshot, validate

BASE = {
    "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "m.safetensors"}},
    "2": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat", "clip": ["1", 1]}},
    "3": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["1", 1]}},
    "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
    "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 1, "steps": 20, "cfg": 7.0,
                                              "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0],
                                              "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
    "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
    "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "x"}},
}


def mutate(fn):
    g = copy.deepcopy(BASE)
    fn(g)
    return [(p.node, p.input, p.code) for p in validate(g, snapshot("full"))]


def test_the_base_graph_is_valid_on_both_snapshots():
    assert validate(BASE, snapshot("full")) == [] and validate(BASE, snapshot("core")) == []


@pytest.mark.parametrize("change, expected", [
    (lambda g: g["4"].update(class_type="EmptyLatentImageXYZ"), ("4", None, "missing_node_type")),
    (lambda g: g["5"]["inputs"].pop("steps"), ("5", "steps", "required_input_missing")),
    (lambda g: g.pop("4"), ("5", "latent_image", "bad_linked_input")),
    (lambda g: g["6"]["inputs"].update(samples=["5", 3]), ("6", "samples", "bad_linked_input")),
    (lambda g: g["6"]["inputs"].update(samples=["2", 0]), ("6", "samples", "return_type_mismatch")),
    (lambda g: g["5"]["inputs"].update(steps=0), ("5", "steps", "value_smaller_than_min")),
    (lambda g: g["5"]["inputs"].update(cfg=101), ("5", "cfg", "value_bigger_than_max")),
    (lambda g: g["5"]["inputs"].update(steps="abc"), ("5", "steps", "invalid_input_type")),
    (lambda g: g["5"]["inputs"].update(steps=2.5), ("5", "steps", "invalid_input_type")),
    (lambda g: g["5"]["inputs"].update(sampler_name="euler_typo"), ("5", "sampler_name", "value_not_in_list")),
    (lambda g: g["5"]["inputs"].update(stepz=20), ("5", "stepz", "undeclared_input")),
    (lambda g: g["2"]["inputs"].update(text=5), ("2", "text", "invalid_input_type")),
])
def test_server_checks(change, expected):
    assert expected in mutate(change)


def test_v3_combo_values_are_checked_though_the_server_skips_them():
    g = {"1": {"class_type": "SaveVideo", "inputs": {"video": ["2", 0], "filename_prefix": "x", "format": "mov",
                                                     "codec": "auto"}},
         "2": {"class_type": "CreateVideo", "inputs": {"images": ["3", 0], "fps": 24.0}},
         "3": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}}}
    assert [(p.node, p.input, p.code) for p in validate(g, snapshot("core"))] == [("1", "format", "value_not_in_list")]


def test_booleans_must_be_json_booleans():
    g = {"1": {"class_type": "PreviewAny", "inputs": {"source": ["2", 0]}},
         "2": {"class_type": "PrimitiveBoolean", "inputs": {"value": "false"}}}
    assert ("2", "value", "invalid_input_type") in [(p.node, p.input, p.code) for p in validate(g, snapshot("core"))]


def test_branches_that_reach_no_output_are_errors():
    problems = mutate(lambda g: g.update({"8": {"class_type": "EmptyLatentImage",
                                                "inputs": {"width": 64, "height": 64, "batch_size": 1}}}))
    assert problems == [("8", None, "unreachable_node")]


def test_a_graph_without_output_is_an_error():
    assert mutate(lambda g: g.pop("7")) == [(None, None, "prompt_no_outputs")]


def test_model_names_are_unknown_offline_but_checked_against_a_live_list():
    from storylang.comfy.schema import ObjectInfo

    live = ObjectInfo(copy.deepcopy(snapshot("full").nodes), "http://127.0.0.1:8188")
    live.nodes["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [["sd15.safetensors"], {}]
    problems = validate(BASE, live)
    assert [(p.node, p.code) for p in problems] == [("1", "value_not_in_list")]
    assert 'checkpoint "m.safetensors" is not on http://127.0.0.1:8188' in problems[0].message


def test_a_missing_custom_node_names_its_pack():
    g = {"1": {"class_type": "ADE_LoadAnimateDiffModel", "inputs": {"model_name": "mm.ckpt"}},
         "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    (problem,) = [p for p in validate(g, snapshot("core")) if p.code == "missing_node_type"]
    assert problem.hint == "install the custom node pack ComfyUI-AnimateDiff-Evolved, which provides it"


def test_a_node_type_todays_server_replaces_is_not_called_missing():
    # 0.33's /prompt rewrites replaced node types (GET /node_replacements) before validating
    from storylang.comfy.client import Client
    from storylang.comfy.schema import live_object_info

    from fake_server import FakeComfy

    g = copy.deepcopy(BASE)
    g["8"] = {"class_type": "T2IAdapterLoader", "inputs": {"t2i_adapter_name": "control_v11p_sd15_canny.pth"}}
    g["9"] = {"class_type": "ControlNetApplyAdvanced",
              "inputs": {"positive": ["2", 0], "negative": ["3", 0], "control_net": ["8", 0],
                         "image": ["10", 0], "strength": 1.0, "start_percent": 0.0, "end_percent": 1.0}}
    g["10"] = {"class_type": "LoadImage", "inputs": {"image": "example.png"}}
    g["5"]["inputs"]["positive"], g["5"]["inputs"]["negative"] = ["9", 0], ["9", 1]
    g["1"]["inputs"]["ckpt_name"] = "dreamshaper_8.safetensors"
    servers = {v: FakeComfy(version=v).start() for v in ("0.33.0", "0.3.64")}
    try:
        today, before = (live_object_info(Client(servers[v].url)) for v in ("0.33.0", "0.3.64"))
        assert not today.has("T2IAdapterLoader") and "T2IAdapterLoader" in today.replacements
        assert validate(g, today) == []
        assert Client(servers["0.33.0"].url).submit(g, "0" * 8 + "-0000-4000-8000-" + "0" * 12, "c")
        # a mapping that drops an input the successor needs is reported on the successor, naming both
        g["8"]["inputs"] = {"name": "x.pth"}
        (problem,) = validate(g, today)
        assert problem.code == "required_input_missing" and problem.input == "control_net_name"
        assert "ControlNetLoader, which the server puts for T2IAdapterLoader" in problem.text()
        # the older server has no replacements: the old type exists there (or is missing) as it is
        assert before.replacements == {}
    finally:
        for s in servers.values():
            s.stop()
