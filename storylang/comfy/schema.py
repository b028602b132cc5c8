"""Validate API-format graphs against a server's /object_info, as the server would and stricter.

The server's checks (execution.py validate_inputs): node types exist, required inputs are
present, links point at existing nodes and outputs of the right type, literals convert to
the input's type and lie within min/max, legacy combo values are among the choices.
Stricter, where the server is lax (PROTOCOL.md): V3 `["COMBO", {"options"}]` values are
checked too (the server accepts a bad one and fails at run time), inputs a node does not
declare are errors (the server drops them silently), booleans must be JSON booleans,
numbers must be numbers, and every node must lead to an output.

Model files: offline (a shipped snapshot or a saved object_info), an empty model list means
"unknown" and such names are not checked. Against a live server the lists of its model
folders (`GET /models/<folder>`) are authoritative: `[]` means the server has none, a list of
only non-files (`VAELoader` offers `pixel_space`) has no files, and the lists that 0.3.64 does
not check on `POST /prompt` (V3 combos such as `UpscaleModelLoader.model_name`) are checked too.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

from storylang.diagnostics import did_you_mean

DATA = Path(__file__).parent / "data"

# Inputs whose node validates the value itself (uploaded files are not in the listed choices).
SELF_VALIDATED = {("LoadImage", "image"), ("LoadImageMask", "image"), ("LoadVideo", "file"),
                  ("VHS_LoadVideo", "video"), ("LoadAudio", "audio"), ("IPAdapterLoadImage", "image")}

# Which model folder each model input lists (GET /models/<folder> on a live server).
MODEL_FOLDERS = {
    ("CheckpointLoaderSimple", "ckpt_name"): "checkpoints", ("LoraLoader", "lora_name"): "loras",
    ("LoraLoaderModelOnly", "lora_name"): "loras", ("VAELoader", "vae_name"): "vae",
    ("UpscaleModelLoader", "model_name"): "upscale_models", ("ControlNetLoader", "control_net_name"): "controlnet",
    ("ADE_LoadAnimateDiffModel", "model_name"): "animatediff_models",
    ("ADE_AnimateDiffLoRALoader", "name"): "animatediff_motion_lora", ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("UNETLoader", "unet_name"): "diffusion_models", ("CLIPLoader", "clip_name"): "text_encoders",
    ("DualCLIPLoader", "clip_name1"): "text_encoders", ("DualCLIPLoader", "clip_name2"): "text_encoders",
    ("LTXAVTextEncoderLoader", "text_encoder"): "text_encoders", ("LTXAVTextEncoderLoader", "ckpt_name"): "checkpoints",
    ("LTXVAudioVAELoader", "ckpt_name"): "checkpoints", ("AudioEncoderLoader", "audio_encoder_name"): "audio_encoders",
}
FOLDER_WORDS = {"checkpoints": "checkpoint", "loras": "LoRA", "vae": "VAE", "upscale_models": "upscale model",
                "controlnet": "ControlNet model", "animatediff_models": "motion model",
                "animatediff_motion_lora": "motion LoRA", "clip_vision": "CLIP vision model",
                "diffusion_models": "diffusion model", "text_encoders": "text encoder",
                "audio_encoders": "audio encoder"}
MODEL_INPUTS = {"ckpt_name": "checkpoint", "lora_name": "LoRA", "vae_name": "VAE", "model_name": "model",
                "control_net_name": "ControlNet model", "unet_name": "diffusion model", "clip_name": "text encoder",
                "name": "motion LoRA"}


@dataclass(frozen=True)
class GraphProblem:
    node: str | None
    class_type: str | None
    input: str | None
    code: str
    message: str
    hint: str | None = None

    def text(self) -> str:
        where = ""
        if self.node is not None:
            where = f'node "{self.node}"' + (f" ({self.class_type})" if self.class_type else "")
            if self.input:
                where += f' input "{self.input}"'
            where += ": "
        return where + self.message


class ObjectInfo:
    """The node types a server has: their inputs, outputs and choices."""

    def __init__(self, data: dict, origin: str, models: dict[str, list[str]] | None = None,
                 replacements: dict | None = None):
        self.nodes = data
        self.origin = origin
        self.models = models  # a live server's model folders (None offline)
        # A live server's /node_replacements (ComfyUI 0.33 and later): old node type → its successors.
        self.replacements = replacements or {}

    def model_choices(self, class_type: str, name: str, listed: list) -> list | None:
        """A live server's files for a model input (plus listed non-files such as `pixel_space`), else None."""
        folder = MODEL_FOLDERS.get((class_type, name))
        if self.models is None or folder is None:
            return None
        return list(self.models.get(folder, [])) + [o for o in listed if not _looks_like_file(o)]

    def has(self, class_type: str) -> bool:
        return class_type in self.nodes

    def inputs(self, class_type: str) -> dict[str, tuple[str, list]]:
        """name → (section, spec) for required and optional inputs, in declaration order."""
        out: dict[str, tuple[str, list]] = {}
        spec = self.nodes[class_type]["input"]
        order = self.nodes[class_type].get("input_order") or {}
        for section in ("required", "optional"):
            names = order.get(section) or list(spec.get(section, {}))
            for name in names:
                if name in spec.get(section, {}):
                    out[name] = (section, spec[section][name])
        return out

    def outputs(self, class_type: str) -> list[str]:
        return list(self.nodes[class_type].get("output", []))

    def is_output(self, class_type: str) -> bool:
        return bool(self.nodes[class_type].get("output_node"))


VERSIONS = ("0.33", "0.3.64")  # the shipped snapshots' ComfyUI versions, newest first
NEWEST = VERSIONS[0]


def snapshot_names() -> list[str]:
    """What --object-info takes besides a file or a URL: core, full (the newest version), a version
    (its full snapshot), or core-VERSION / full-VERSION."""
    return ["core", "full", *VERSIONS, *(f"{kind}-{v}" for v in VERSIONS for kind in ("core", "full"))]


@lru_cache(maxsize=8)
def snapshot(name: str = "full", version: str = NEWEST) -> ObjectInfo:
    """The object_info shipped with storylang: "core" (stock ComfyUI) or "full" (with popular packs)
    of a ComfyUI version (VERSIONS)."""
    with gzip.open(DATA / f"object_info.{name}-{version}.json.gz", "rt", encoding="utf-8") as fh:
        return ObjectInfo(json.load(fh), f"the shipped {name} snapshot (ComfyUI {version})")


def _named_snapshot(source: str) -> ObjectInfo | None:
    kind, _, version = source.partition("-")
    if source in VERSIONS:
        return snapshot("full", source)
    if kind in ("core", "full") and (version or NEWEST) in VERSIONS:
        return snapshot(kind, version or NEWEST)
    return None


def load_object_info(source: str) -> ObjectInfo:
    """A shipped snapshot (snapshot_names), a JSON file, or a server URL (its /object_info and model
    folders are read)."""
    named = _named_snapshot(source)
    if named is not None:
        return named
    if source.startswith(("http://", "https://")):
        from storylang.comfy.client import Client, ComfyError

        try:
            return live_object_info(Client(source))
        except ComfyError as e:
            raise OSError(str(e)) from e
    return ObjectInfo(json.loads(Path(source).read_text(encoding="utf-8")), source)


def live_object_info(client) -> ObjectInfo:
    """A running server's node types with the files of its model folders (authoritative lists)."""
    raw = client.object_info()
    folders = set(client.model_folders())
    models = {f: client.models(f) for f in sorted(set(MODEL_FOLDERS.values()) & folders)}
    return ObjectInfo(raw, client.name, models, client.node_replacements())


def apply_replacements(graph: dict, info: ObjectInfo) -> tuple[dict, dict[str, str]]:
    """The graph as the server rewrites it before validating (ComfyUI 0.33's node replacements): a node
    whose type the server lacks but has replaced becomes the first successor the server has, with only
    the mapped inputs (copied or set), and links from it follow the output mapping. Returns the new
    graph and node id → the old type, for messages."""
    links_from: dict[str, list[tuple[str, str]]] = {}
    for node_id, node in graph.items():
        for name, value in (node.get("inputs") or {}).items() if isinstance(node, dict) else ():
            if _is_link(value):
                links_from.setdefault(value[0], []).append((node_id, name))
    out = dict(graph)
    replaced: dict[str, str] = {}
    for node_id, node in graph.items():
        old = node.get("class_type") if isinstance(node, dict) else None
        if not isinstance(old, str) or info.has(old) or not info.replacements.get(old):
            continue
        rule = info.replacements[old][0]  # the server uses the first one
        new = rule.get("new_node_id")
        if not info.has(new) or not isinstance(node.get("inputs"), dict):
            continue
        inputs = {}
        for entry in rule.get("input_mapping") or ():
            if "set_value" in entry:
                inputs[entry["new_id"]] = entry["set_value"]
            elif entry.get("old_id") in node["inputs"]:
                inputs[entry["new_id"]] = node["inputs"][entry["old_id"]]
        out[node_id] = {**node, "class_type": new, "inputs": inputs}
        replaced[node_id] = old
        for user, name in links_from.get(node_id, ()):
            for entry in rule.get("output_mapping") or ():
                if entry.get("old_idx") == out[user]["inputs"][name][1]:
                    out[user] = {**out[user], "inputs": {**out[user]["inputs"], name: [node_id, entry["new_idx"]]}}
                    break
    return out, replaced


def combo_options(spec: list) -> list | None:
    """The choices of a combo input in either encoding, or None if the input is not a combo."""
    kind = spec[0] if spec else None
    if isinstance(kind, list):
        return kind
    if kind == "COMBO":
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return list(opts.get("options", []))
    return None


_MODEL_SUFFIXES = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".gguf", ".onnx", ".sft", ".yaml")


def _looks_like_file(value) -> bool:
    return isinstance(value, str) and value.lower().endswith(_MODEL_SUFFIXES)


def _options(spec: list) -> dict:
    return spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}


def _is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int) \
        and not isinstance(value[1], bool)


def _types_match(received: str, wanted: str) -> bool:
    if received == "*" or wanted == "*" or received == wanted:
        return True
    a, b = set(received.split(",")), set(wanted.split(","))
    return bool(a & b)


def _check_literal(problems, node_id, ct, name, spec, value, info: ObjectInfo):
    def bad(code, message, hint=None):
        problems.append(GraphProblem(node_id, ct, name, code, message, hint))

    if isinstance(value, dict) and set(value) == {"__value__"}:
        return
    options = combo_options(spec)
    kind = spec[0] if spec else None
    opts = _options(spec)
    if options is not None:
        if (ct, name) in SELF_VALIDATED or opts.get("image_upload") or opts.get("video_upload"):
            return
        live = info.model_choices(ct, name, options)
        if live is not None:
            options = live
        elif not options or (_looks_like_file(value) and not any(_looks_like_file(o) for o in options)):
            return  # a model list with no files in it: unknown offline (a live server lists its files)
        if value not in options:
            guess = did_you_mean(str(value), [str(o) for o in options])
            shown = ", ".join(str(o) for o in options[:8]) + (" ..." if len(options) > 8 else "")
            what = FOLDER_WORDS.get(MODEL_FOLDERS.get((ct, name)), MODEL_INPUTS.get(name))
            msg = (f'{what} "{value}" is not on {info.origin}' if what and info.origin.startswith("http")
                   else f'"{value}" is not one of the choices')
            folder = MODEL_FOLDERS.get((ct, name))
            elsewhere = [f for f, files in sorted((info.models or {}).items()) if f != folder and value in files]
            if live is not None and elsewhere:
                # the file is there, in another folder: the model family says how to load it
                hint = (f"it is in ComfyUI/models/{elsewhere[0]}/, a {FOLDER_WORDS.get(elsewhere[0], 'model')}: "
                        f"its model family loads a {what}; name the right family after the file "
                        f'(model "{value}" flux1), or move it')
            elif live is not None and not any(_looks_like_file(o) for o in options):
                hint = f"the server has no {what or 'file'}s: put {value} in ComfyUI/models/{folder}/"
            else:
                hint = f'did you mean "{guess}"?' if guess else f"choices: {shown}"
            bad("value_not_in_list", msg, hint)
        return
    if kind == DYNAMIC_COMBO:
        keys = [o.get("key") for o in opts.get("options", [])]
        if value not in keys:
            guess = did_you_mean(str(value), [str(k) for k in keys])
            bad("value_not_in_list", f'"{value}" is not one of the choices',
                f'did you mean "{guess}"?' if guess else f"choices: {', '.join(str(k) for k in keys)}")
        return
    if kind == MATCHTYPE:
        return  # its type follows what it is given; the node checks a value itself
    if kind == "BOOLEAN":
        if not isinstance(value, bool):
            bad("invalid_input_type", f"{json.dumps(value)} is not a JSON boolean",
                "write true or false (the server reads any non-empty string as true)")
        return
    if kind == "INT":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not value.is_integer()):
            bad("invalid_input_type", f"{json.dumps(value)} is not a whole number")
            return
    elif kind == "FLOAT" or (isinstance(kind, str) and set(kind.split(",")) == {"FLOAT", "INT"}):
        # "FLOAT,INT" (LTX's frame rates): the server converts neither, and checks the range
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            bad("invalid_input_type", f"{json.dumps(value)} is not a number")
            return
    elif kind == "STRING":
        if not isinstance(value, str):
            bad("invalid_input_type", f"{json.dumps(value)} is not text")
        return
    else:
        bad("invalid_input_type", f"a {kind} input takes a link from another node, not a value")
        return
    lo, hi = opts.get("min"), opts.get("max")
    if lo is not None and value < lo:
        bad("value_smaller_than_min", f"{value} is below the minimum {lo}")
    elif hi is not None and value > hi:
        bad("value_bigger_than_max", f"{value} is above the maximum {hi}")


DYNAMIC_COMBO, AUTOGROW, MATCHTYPE, DYNAMIC_SLOT = ("COMFY_DYNAMICCOMBO_V3", "COMFY_AUTOGROW_V3",
                                                     "COMFY_MATCHTYPE_V3", "COMFY_DYNAMICSLOT_V3")


def dynamic_inputs(declared: dict, given: dict, prefix: str = "") -> dict[str, tuple[str, list]]:
    """The inputs that V3 dynamic inputs (ComfyUI 0.33) open, named as the server names them
    (comfy_api/latest/_io.py: `parent.child`):
    - a dynamic combo (SaveVideo's `format`) opens the inputs of the option chosen, recursively;
    - an autogrow list (`images`) opens `images.image0`, `images.image1`, ... after its template,
      the first `min` of them required;
    - a dynamic slot opens its nested inputs once it is given.
    The server's validator does not insist on a chosen option's nested inputs (it runs a graph
    without them, with the node's defaults), so they are declared optional here."""
    out: dict[str, tuple[str, list]] = {}
    for name, (section, spec) in declared.items():
        kind, opts = (spec[0] if spec else None), _options(spec)
        full = f"{prefix}{name}"
        nested: dict[str, tuple[str, list]] = {}
        if kind == DYNAMIC_COMBO and full in given:
            chosen = next((o for o in opts.get("options", []) if o.get("key") == given[full]), None)
            for sec, inputs in ((chosen or {}).get("inputs") or {}).items():
                for child, child_spec in (inputs or {}).items():
                    nested[child] = ("optional" if sec in ("required", "optional") else sec, child_spec)
        elif kind == AUTOGROW:
            template = opts.get("template") or {}
            names = template.get("names") or [f"{template.get('prefix', '')}{i}" for i in range(template.get("max", 0))]
            inputs = next(iter((template.get("input") or {}).values()), {})
            child_spec = next(iter(inputs.values()), ["*", {}])
            for i, child in enumerate(names):
                nested[child] = ("required" if i < template.get("min", 0) else "optional", child_spec)
        elif kind == DYNAMIC_SLOT and full in given:
            for sec, inputs in (opts.get("inputs") or {}).items():
                for child, child_spec in (inputs or {}).items():
                    nested[child] = ("optional", child_spec)
        if nested:
            for child, entry in nested.items():
                out[f"{full}.{child}"] = entry
            out.update(dynamic_inputs(nested, given, f"{full}."))
    return out


def format_widgets(declared: dict, given: dict) -> dict[str, tuple[str, list]]:
    """Inputs that appear with a chosen format (VHS_VideoCombine's `formats`: pix_fmt, crf, ...)."""
    extra = {}
    for name, (_section, spec) in declared.items():
        formats = _options(spec).get("formats")
        if isinstance(formats, dict) and given.get(name) in formats:
            for widget in formats[given[name]]:
                extra[widget[0]] = ("required", list(widget[1:]))
    return extra


def validate(graph: dict, info: ObjectInfo) -> list[GraphProblem]:
    """Every problem in an API-format graph; an empty list means the server would accept it."""
    problems: list[GraphProblem] = []
    if not isinstance(graph, dict) or not graph:
        return [GraphProblem(None, None, None, "invalid_prompt", "the graph is empty or not a JSON object")]
    graph, replaced = apply_replacements(graph, info)
    problems = [replace(p, class_type=f"{p.class_type}, which the server puts for {replaced[p.node]}")
                if p.node in replaced else p for p in _validate_nodes(graph, info)]
    if any(p.code == "missing_node_type" for p in problems):
        return problems  # which nodes are outputs, or lead to one, cannot be known (nor does the server say)
    return problems + _reachability(graph, info)


def _validate_nodes(graph: dict, info: ObjectInfo) -> list[GraphProblem]:
    problems: list[GraphProblem] = []
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            problems.append(GraphProblem(node_id, None, None, "invalid_prompt", "node has no class_type"))
            continue
        ct = node["class_type"]
        if not info.has(ct):
            problems.append(GraphProblem(node_id, ct, None, "missing_node_type",
                                         f"node type {ct} does not exist on {info.origin}", _missing_hint(ct, info)))
            continue
        declared = info.inputs(ct)
        given = node.get("inputs", {})
        if not isinstance(given, dict):
            problems.append(GraphProblem(node_id, ct, None, "invalid_prompt", "inputs is not an object"))
            continue
        declared.update(format_widgets(declared, given))
        declared.update(dynamic_inputs(declared, given))
        for name, (section, spec) in declared.items():
            if (spec[0] if spec else None) == AUTOGROW:
                continue  # its own name is no input: its grown entries are (dynamic_inputs)
            if section == "required" and name not in given:
                problems.append(GraphProblem(node_id, ct, name, "required_input_missing", "required input is missing"))
        for name, value in given.items():
            if name not in declared:
                guess = did_you_mean(name, list(declared))
                problems.append(GraphProblem(node_id, ct, name, "undeclared_input",
                                             f"{ct} has no input named {name} (the server would drop it silently)",
                                             f'did you mean "{guess}"?' if guess else None))
                continue
            spec = declared[name][1]
            if _is_link(value):
                src_id, slot = value
                if src_id not in graph:
                    problems.append(GraphProblem(node_id, ct, name, "bad_linked_input",
                                                 f'links to node "{src_id}", which is not in the graph'))
                    continue
                src_ct = graph[src_id].get("class_type") if isinstance(graph[src_id], dict) else None
                if not src_ct or not info.has(src_ct):
                    continue  # reported at that node
                outs = info.outputs(src_ct)
                if not 0 <= slot < len(outs):
                    problems.append(GraphProblem(node_id, ct, name, "bad_linked_input",
                                                 f'links to output {slot} of node "{src_id}" ({src_ct}), '
                                                 f"which has {len(outs)} output{'s' * (len(outs) != 1)}"))
                    continue
                wanted = "COMBO" if combo_options(spec) is not None or spec[0] == DYNAMIC_COMBO else spec[0]
                if wanted == MATCHTYPE:
                    wanted = str((_options(spec).get("template") or {}).get("allowed_types", "*"))
                elif wanted == DYNAMIC_SLOT:
                    wanted = str(_options(spec).get("slotType", "*"))
                received = outs[slot]
                if isinstance(received, list):
                    received = "COMBO"
                if not _types_match(received, wanted):
                    problems.append(GraphProblem(node_id, ct, name, "return_type_mismatch",
                                                 f'receives {received} from node "{src_id}" ({src_ct}) but takes {wanted}'))
            else:
                _check_literal(problems, node_id, ct, name, spec, value, info)
    return problems


def _missing_hint(class_type: str, info: ObjectInfo) -> str:
    """Which custom node pack provides a node type (as far as the shipped snapshot knows)."""
    known = snapshot("full").nodes.get(class_type)
    module = (known or {}).get("python_module", "")
    if module.startswith("custom_nodes."):
        return f"install the custom node pack {module.split('.', 1)[1]}, which provides it"
    guess = did_you_mean(class_type, list(info.nodes))
    return f"did you mean {guess}?" if guess else "install the custom node pack that provides it"


def _reachability(graph: dict, info: ObjectInfo) -> list[GraphProblem]:
    outputs = [nid for nid, n in graph.items()
               if isinstance(n, dict) and info.has(n.get("class_type", "")) and info.is_output(n["class_type"])]
    if not outputs:
        return [GraphProblem(None, None, None, "prompt_no_outputs", "the graph has no output node",
                             "add a node that saves or previews a result, such as SaveImage")]
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        nid = stack.pop()
        if nid in seen or nid not in graph:
            continue
        seen.add(nid)
        for value in (graph[nid].get("inputs") or {}).values():
            if _is_link(value):
                stack.append(value[0])
    problems = []
    for nid, n in graph.items():
        if nid not in seen and isinstance(n, dict):
            problems.append(GraphProblem(nid, n.get("class_type"), None, "unreachable_node",
                                         "this node leads to no output: its work would be thrown away",
                                         "connect it to the rest of the graph or remove it"))
    return problems
