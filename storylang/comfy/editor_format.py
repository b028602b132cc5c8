"""ComfyUI's editor format (`nodes`, `links`, `widgets_values`) → API format (what POST /prompt takes).

Widget values are matched to the node's widget inputs in declaration order (object_info),
skipping the extra "control after generate" value that follows a seed and the upload
button's value after an image/video input. Reroutes pass their link through, primitive
nodes become literal values, muted nodes are dropped and bypassed nodes pass their inputs
straight to the nodes downstream. Notes and other editor-only nodes are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storylang.comfy.schema import ObjectInfo, combo_options
from storylang.diagnostics import OneLineError

EDITOR_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "PrimitiveString", "PrimitiveInt"}
MUTED, BYPASSED = 2, 4


class ImportProblem(OneLineError):
    pass


@dataclass
class Converted:
    graph: dict
    notes: list[str] = field(default_factory=list)


def _is_widget(spec: list) -> bool:
    kind = spec[0] if spec else None
    if combo_options(spec) is not None:
        return True
    if kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        return not opts.get("forceInput")
    return False


def _has_control(name: str, spec: list) -> bool:
    opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return bool(opts.get("control_after_generate")) or (spec and spec[0] == "INT" and name in ("seed", "noise_seed"))


def _links(workflow: dict) -> dict:
    """link id → (origin node, origin slot, target node, target slot); lists and dicts both occur."""
    links = {}
    for link in workflow["links"]:
        if isinstance(link, dict):
            links[link["id"]] = (link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"])
        else:
            links[link[0]] = (link[1], link[2], link[3], link[4])
    return links


def _widget_inputs(node: dict, declared: dict) -> dict:
    """A node's widget values by input name, in the order its class declares them."""
    values = node.get("widgets_values")
    inputs: dict = {}
    if isinstance(values, dict):
        for name, (_section, spec) in declared.items():
            if _is_widget(spec) and name in values:
                inputs[name] = values[name]
    elif values is not None:
        i = 0
        for name, (_section, spec) in declared.items():
            if not _is_widget(spec):
                continue
            if i >= len(values):
                break
            inputs[name] = values[i]
            i += 1
            # the editor's "control after generate" widget (older workflows saved it as a boolean)
            if _has_control(name, spec) and i < len(values) and (
                    isinstance(values[i], bool) or values[i] in ("fixed", "increment", "decrement", "randomize")):
                i += 1
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if (opts.get("image_upload") or opts.get("video_upload")) and i < len(values) and values[i] in ("image", "video"):
                i += 1
    # a widget the workflow saved no value for shows its default in the editor
    for name, (section, spec) in declared.items():
        opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if section == "required" and name not in inputs and _is_widget(spec) and "default" in opts:
            inputs[name] = opts["default"]
    return inputs


def _prune_unreachable(graph: dict, info: ObjectInfo, notes: list[str]) -> None:
    """Nodes that lead to no output never run on the server; leave them out (and say so)."""
    reachable: set[str] = set()
    stack = [nid for nid, n in graph.items() if info.is_output(n["class_type"])]
    while stack:
        nid = stack.pop()
        if nid in reachable or nid not in graph:
            continue
        reachable.add(nid)
        stack.extend(v[0] for v in graph[nid]["inputs"].values()
                     if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str))
    if reachable:
        for nid in [n for n in graph if n not in reachable]:
            notes.append(f"left out node {nid} ({graph[nid]['class_type']}): it leads to no output")
            del graph[nid]


def convert(workflow: dict, info: ObjectInfo) -> Converted:
    """Convert an editor-format workflow; raises ImportProblem for what cannot be converted."""
    if "nodes" not in workflow or "links" not in workflow:
        if all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            return Converted(graph=workflow, notes=["this workflow is already in API format"])
        raise ImportProblem("this is not a ComfyUI workflow (no nodes and links)")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = _links(workflow)
    notes: list[str] = []
    unknown = sorted({n["type"] for n in nodes.values() if n["type"] not in EDITOR_ONLY and not info.has(n["type"])
                      and n.get("mode", 0) != MUTED})
    if unknown:
        raise ImportProblem("node types not on " + info.origin + ": " + ", ".join(unknown))

    def resolve_source(link_id, depth=0):
        """Follow reroutes and bypassed nodes to the real source: ("link", [id, slot]) or ("value", v)."""
        if depth > 100 or link_id not in links:
            return None
        origin, slot, _, _ = links[link_id]
        src = nodes.get(origin)
        if src is None:
            return None
        if src["type"] == "Reroute":
            ins = src.get("inputs") or []
            return resolve_source(ins[0].get("link"), depth + 1) if ins else None
        if src["type"].startswith("Primitive"):
            values = src.get("widgets_values") or []
            return ("value", values[0]) if values else None
        if src.get("mode", 0) == BYPASSED:
            out_type = (src.get("outputs") or [{}])[slot].get("type") if slot < len(src.get("outputs") or []) else None
            for inp in src.get("inputs") or []:
                if inp.get("link") is not None and inp.get("type") == out_type:
                    return resolve_source(inp["link"], depth + 1)
            return None
        if src.get("mode", 0) == MUTED:
            return None
        return ("link", [str(origin), slot])

    graph: dict = {}
    for nid, node in sorted(nodes.items()):
        ct = node["type"]
        if ct in EDITOR_ONLY or node.get("mode", 0) in (MUTED, BYPASSED):
            continue
        declared = info.inputs(ct)
        inputs = _widget_inputs(node, declared)
        for inp in node.get("inputs") or []:
            name = inp.get("name")
            if inp.get("link") is None or name not in declared:
                continue
            found = resolve_source(inp["link"])
            if found is None:
                notes.append(f'node {nid} ({ct}): input "{name}" comes from a muted or missing node')
                inputs.pop(name, None)
                continue
            inputs[name] = found[1]  # a value, or a [node, slot] link
        entry = {"class_type": ct, "inputs": inputs}
        if node.get("title"):
            entry["_meta"] = {"title": node["title"]}
        graph[str(nid)] = entry
    _prune_unreachable(graph, info, notes)
    return Converted(graph=graph, notes=notes)
