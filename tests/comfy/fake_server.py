"""A ComfyUI test server on 127.0.0.1 that speaks the API of 0.3.64 as PROTOCOL.md records it.

It serves the shipped object_info (model lists from its own folders), validates prompts the
way the real server does for what storylang sends (unknown node types, missing required
inputs, legacy combo values not in the list, with the real error bodies; V3 combos are not
checked and fail at run time), keeps a queue and an in-memory history, and runs each prompt
with the real websocket events in the real order. Outputs are real files: PNGs for
SaveImage, MP4s (made with ffmpeg) for VHS_VideoCombine and SaveVideo, with the frame count
the graph asks for. Faults on demand: step delays, execution errors per node type, dropped
websockets, kill and restart with an empty history.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import heapq
import io
import itertools
import json
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from aiohttp import WSMsgType, web
from PIL import Image

from storylang.toolchain import find_ffmpeg

from loop_server import LoopServer

SNAPSHOT = Path(__file__).resolve().parents[2] / "storylang" / "comfy" / "data" / "object_info.full-0.3.64.json.gz"
FOLDERS = {("CheckpointLoaderSimple", "ckpt_name"): "checkpoints", ("LoraLoader", "lora_name"): "loras",
           ("VAELoader", "vae_name"): "vae", ("UpscaleModelLoader", "model_name"): "upscale_models",
           ("ControlNetLoader", "control_net_name"): "controlnet",
           ("ADE_LoadAnimateDiffModel", "model_name"): "animatediff_models",
           ("ADE_AnimateDiffLoRALoader", "name"): "animatediff_motion_lora",
           ("CLIPVisionLoader", "clip_name"): "clip_vision", ("UNETLoader", "unet_name"): "diffusion_models",
           ("CLIPLoader", "clip_name"): "text_encoders", ("DualCLIPLoader", "clip_name1"): "text_encoders",
           ("DualCLIPLoader", "clip_name2"): "text_encoders"}
DEFAULT_MODELS = {"checkpoints": ["dreamshaper_8.safetensors", "random_sd15.safetensors", "juggernautXL_v9.safetensors",
                                  "ltx-2-19b-dev-fp8.safetensors", "ace_step_v1_3.5b.safetensors",
                                  "ace_step_1.5_turbo_aio.safetensors"],
                  "loras": ["mara_v2.safetensors", "random_lora.safetensors", "storybook_style.safetensors"],
                  "vae": ["vae-ft-mse-840000-ema-pruned.safetensors", "wan_2.1_vae.safetensors", "ae.safetensors",
                          "flux2-vae.safetensors", "qwen_image_vae.safetensors", "wan2.2_vae.safetensors",
                          "hunyuanvideo15_vae_fp16.safetensors"],
                  "upscale_models": ["4x-UltraSharp.pth"], "controlnet": ["control_v11p_sd15_canny.pth"],
                  "animatediff_models": ["v3_sd15_mm.ckpt", "mm_sd_v15_v2.ckpt"],
                  "animatediff_motion_lora": ["v2_lora_ZoomIn.ckpt", "v2_lora_ZoomOut.ckpt", "v2_lora_PanLeft.ckpt",
                                              "v2_lora_PanRight.ckpt", "v2_lora_TiltUp.ckpt", "v2_lora_TiltDown.ckpt",
                                              "v2_lora_RollingClockwise.ckpt", "v2_lora_RollingAnticlockwise.ckpt"],
                  "clip_vision": ["clip_vision_h.safetensors"],
                  # the model families' own files (examples/families.story)
                  "diffusion_models": ["wan2.1_flf2v_720p_14B_fp16.safetensors", "flux1-dev-fp8.safetensors",
                                       "flux2_dev_fp8mixed.safetensors", "qwen_image_fp8_e4m3fn.safetensors",
                                       "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                                       "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                                       "wan2.2_i2v_high_noise_14B_fp8_scaled.safetensors",
                                       "wan2.2_i2v_low_noise_14B_fp8_scaled.safetensors",
                                       "wan2.2_ti2v_5B_fp16.safetensors", "hunyuanvideo1.5_720p_t2v_fp16.safetensors",
                                       "chroma-unlocked-v50.safetensors", "wan2.2_s2v_14B_fp8_scaled.safetensors"],
                  "audio_encoders": ["wav2vec2_large_english_fp16.safetensors"],
                  "text_encoders": ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "clip_l.safetensors",
                                    "t5xxl_fp8_e4m3fn.safetensors", "mistral_3_small_flux2_fp8.safetensors",
                                    "qwen_2.5_vl_7b_fp8_scaled.safetensors", "gemma_3_12B_it_fp4_mixed.safetensors",
                                    "byt5_small_glyphxl_fp16.safetensors"]}
_INFO_CACHE: dict = {}


def _replacement(old: str, new: str, inputs: list | None = None) -> dict:
    return {"new_node_id": new, "old_node_id": old, "old_widget_ids": None, "input_mapping": inputs,
            "output_mapping": None}


# Some of ComfyUI 0.33's built-in node replacements (comfy_extras/nodes_replacements.py), as
# GET /node_replacements lists them.
NODE_REPLACEMENTS = {
    "T2IAdapterLoader": [_replacement("T2IAdapterLoader", "ControlNetLoader",
                                      [{"new_id": "control_net_name", "old_id": "t2i_adapter_name"}])],
    "SDV_img2vid_Conditioning": [_replacement("SDV_img2vid_Conditioning", "SVD_img2vid_Conditioning")],
    "ConditioningAverage ": [_replacement("ConditioningAverage ", "ConditioningAverage")],
    "Load3DAnimation": [_replacement("Load3DAnimation", "Load3D")],
}


def apply_node_replacements(graph: dict, info: dict) -> dict:
    """What 0.33's /prompt does first: a replaced node type the server lacks becomes its successor,
    keeping only the mapped inputs."""
    out = dict(graph)
    for nid, node in graph.items():
        ct = node.get("class_type") if isinstance(node, dict) else None
        if ct in info or ct not in NODE_REPLACEMENTS:
            continue
        rule = NODE_REPLACEMENTS[ct][0]
        inputs = {m["new_id"]: node.get("inputs", {})[m["old_id"]] for m in rule["input_mapping"] or ()
                  if m["old_id"] in node.get("inputs", {})}
        out[nid] = {**node, "class_type": rule["new_node_id"], "inputs": inputs}
    return out


def _snapshot(version: str = "0.3.64") -> dict:
    """The shipped full snapshot of a ComfyUI version: what a real server of it answers."""
    version = "0.33" if version.startswith("0.33") else "0.3.64"
    if version not in _INFO_CACHE:
        with gzip.open(SNAPSHOT.with_name(f"object_info.full-{version}.json.gz"), "rt", encoding="utf-8") as fh:
            _INFO_CACHE[version] = json.load(fh)
    return _INFO_CACHE[version]


def _err(kind, message, details="", extra=None):
    return {"type": kind, "message": message, "details": details, "extra_info": extra or {}}


class FakeComfy(LoopServer):
    """One server; `start()` it, point a client at `url`, `stop()` it. Thread-safe controls."""

    def __init__(self, models: dict | None = None, step_delay: float = 0.0, node_delay: float = 0.0,
                 fail: dict[str, str] | None = None, drop_nodes: set[str] = frozenset(), token: str | None = None,
                 without: set[str] = frozenset(), version: str = "0.3.64", port: int = 0,
                 prompt_delay: float = 0.0):
        self.models = {k: list(v) for k, v in (models if models is not None else DEFAULT_MODELS).items()}
        self.step_delay, self.node_delay, self.prompt_delay = step_delay, node_delay, prompt_delay
        self.fail = dict(fail or {})  # class_type → exception message raised when it runs
        self.drop_nodes = set(drop_nodes)  # the websocket drops when such a node starts
        self.token = token
        self.without = set(without)  # node types (or "pack:<module>") this server lacks
        self.version = version
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix="fakecomfy-"))
        self.submitted: list[str] = []  # prompt ids of every POST /prompt that was queued
        self.graphs: dict[str, dict] = {}  # prompt id → the graph submitted
        self.model_lists_asked = 0  # GET /models and /models/{folder}
        self.uploads: list[str] = []  # names written by /upload/image
        self.executed: list[str] = []  # prompt ids that ran to the end
        self.loads: list[str] = []  # model loads (other checkpoints or UNETs than the last graph's)
        self.interrupted: list[str] = []
        self.deleted: list[str] = []

    # ------------------------------------------------------------------ life

    def start(self) -> "FakeComfy":
        self._fresh_state()
        return super().start()

    def stop(self) -> None:
        """Kill the server: sockets closed, the running prompt lost (like kill -9)."""
        super().stop()

    def restart(self) -> None:
        """Start again on the same port with an empty queue and history (ComfyUI keeps both in memory)."""
        self.stop()
        self.start()

    def drop_sockets(self) -> None:
        asyncio.run_coroutine_threadsafe(self._close_sockets(), self._loop).result(5)

    def _fresh_state(self) -> None:
        self.queue: list = []
        self.history: dict = {}
        self.running: str | None = None
        self.running_node: str | None = None
        self.sockets: dict = {}
        self.counter = itertools.count()
        self.outputs_counter = itertools.count(1)
        self.interrupt_flag = False
        self.loaded_checkpoint = None

    def _app(self) -> web.Application:
        app = web.Application(client_max_size=100 << 20, middlewares=[self._auth])
        r = app.router
        for prefix in ("", "/api"):
            r.add_get(prefix + "/object_info", self.h_object_info)
            r.add_get(prefix + "/models", self.h_models)
            r.add_get(prefix + "/models/{folder}", self.h_models_folder)
            r.add_get(prefix + "/system_stats", self.h_system_stats)
            r.add_get(prefix + "/features", self.h_features)
            r.add_post(prefix + "/prompt", self.h_prompt)
            r.add_get(prefix + "/prompt", self.h_prompt_info)
            r.add_get(prefix + "/queue", self.h_queue)
            r.add_post(prefix + "/queue", self.h_queue_post)
            r.add_get(prefix + "/history/{pid}", self.h_history_one)
            r.add_get(prefix + "/history", self.h_history)
            r.add_post(prefix + "/history", self.h_history_post)
            r.add_post(prefix + "/interrupt", self.h_interrupt)
            r.add_get(prefix + "/view", self.h_view)
            r.add_post(prefix + "/upload/image", self.h_upload)
        if self.v033:  # the jobs API and node replacements (404 on 0.3.64)
            for prefix in ("", "/api"):
                r.add_get(prefix + "/node_replacements", self.h_node_replacements)
            r.add_get("/api/jobs", self.h_jobs)
            r.add_get("/api/jobs/{pid}", self.h_job)
        r.add_get("/ws", self.h_ws)
        return app

    @property
    def v033(self) -> bool:
        return self.version.startswith("0.33")

    def _job_state(self, pid: str) -> str | None:
        if pid in self.history:
            return "completed" if self.history[pid]["status"]["status_str"] == "success" else "failed"
        if self.running == pid:
            return "in_progress"
        if any(item[1] == pid for item in self.queue):
            return "pending"
        return None

    def graphs_submitted(self, since: int = 0) -> list[dict]:
        """The graphs of the prompts queued, in the order they came, from the `since`-th on."""
        return [self.history[pid]["prompt"][2] for pid in self.submitted[since:]]

    async def h_node_replacements(self, request):
        return web.json_response(NODE_REPLACEMENTS)

    async def h_jobs(self, request):
        pids = [*self.history, *([self.running] if self.running else []), *(i[1] for i in self.queue)]
        self.job_questions = getattr(self, "job_questions", 0) + 1
        return web.json_response({"jobs": [{"id": p, "status": self._job_state(p)} for p in pids]})

    async def h_job(self, request):
        pid = request.match_info["pid"]
        self.job_questions = getattr(self, "job_questions", 0) + 1
        state = self._job_state(pid)
        if state is None:
            return web.json_response({"error": "Job not found"}, status=404)
        return web.json_response({"id": pid, "status": state})

    def _started(self) -> None:
        self._wake = asyncio.Event()
        self._worker = self._loop.create_task(self._work())

    async def _shutdown(self) -> None:
        self._worker.cancel()
        await self._close_sockets()
        await self._runner.cleanup()

    async def _close_sockets(self) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        self.sockets.clear()

    @web.middleware
    async def _auth(self, request, handler):
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="401: Unauthorized")
        return await handler(request)

    # ------------------------------------------------------------------ info

    def object_info(self) -> dict:
        """The snapshot with this server's model files in its loaders' lists (rebuilt when they change)."""
        state = json.dumps([self.models, sorted(self.without)], sort_keys=True)
        if getattr(self, "_info_state", None) != state:
            self._info, self._info_state = self._build_info(), state
        return self._info

    def _build_info(self) -> dict:
        info = {k: v for k, v in _snapshot(self.version).items() if k not in self.without
                and f"pack:{v.get('python_module', '')}" not in self.without}
        out = {}
        for ct, node in info.items():
            node = json.loads(json.dumps(node)) if any(c == ct for c, _ in FOLDERS) else node
            for (c, name), folder in FOLDERS.items():
                if c == ct and name in node["input"].get("required", {}):
                    spec = node["input"]["required"][name]
                    keep = [o for o in (spec[0] if isinstance(spec[0], list) else []) if o == "pixel_space"]
                    if isinstance(spec[0], list):
                        spec[0] = list(self.models.get(folder, [])) + keep
            out[ct] = node
        return out

    async def h_object_info(self, request):
        info = self.object_info()
        if getattr(self, "_info_body", (None,))[0] is not info:
            self._info_body = (info, json.dumps(info).encode())
        return web.Response(body=self._info_body[1], content_type="application/json")

    async def h_models(self, request):
        self.model_lists_asked += 1
        return web.json_response(list(self.models))

    async def h_models_folder(self, request):
        self.model_lists_asked += 1
        folder = request.match_info["folder"]
        if folder not in self.models:
            return web.Response(status=404)
        return web.json_response(self.models[folder])

    async def h_system_stats(self, request):
        return web.json_response({"system": {"os": "posix", "ram_total": 1, "ram_free": 1,
                                             "comfyui_version": self.version, "python_version": "3.11",
                                             "pytorch_version": "2.13.0+cpu", "embedded_python": False,
                                             "argv": ["main.py", "--cpu"]},
                                  "devices": [{"name": "cpu", "type": "cpu", "index": None, "vram_total": 0,
                                               "vram_free": 0, "torch_vram_total": 0, "torch_vram_free": 0}]})

    async def h_features(self, request):
        return web.json_response({"supports_preview_metadata": True, "max_upload_size": 104857600})

    # ------------------------------------------------------------------ prompts

    def validate(self, graph: dict):
        """(error, node_errors) as POST /prompt computes them, for the checks storylang's graphs meet."""
        info = self.object_info()
        for nid, node in graph.items():
            if not isinstance(node, dict) or "class_type" not in node:
                return _err("invalid_prompt", "Cannot execute because a node is missing the class_type property.",
                            f"Node ID '#{nid}'"), {}
            if node["class_type"] not in info and self.v033:
                return _err("missing_node_type", f"Node '{node['class_type']}' not found. The custom node may not "
                            "be installed.", f"Node ID '#{nid}'", {"node_id": nid, "class_type": node["class_type"],
                                                                   "node_title": node["class_type"]}), {}
            if node["class_type"] not in info:
                return _err("invalid_prompt", f"Cannot execute because node {node['class_type']} does not exist.",
                            f"Node ID '#{nid}'"), {}
        outputs = [nid for nid, n in graph.items() if info[n["class_type"]].get("output_node")]
        if not outputs:
            return _err("prompt_no_outputs", "Prompt has no outputs"), {}
        node_errors = {}
        for nid, node in graph.items():
            errors = []
            spec = info[node["class_type"]]["input"]
            for name, s in spec.get("required", {}).items():
                value = node.get("inputs", {}).get(name)
                if value is None:
                    errors.append(_err("required_input_missing", "Required input is missing", name,
                                       {"input_name": name}))
                elif isinstance(s[0], list) and not isinstance(value, list) and value not in s[0] \
                        and node["class_type"] not in ("LoadImage", "LoadImageMask"):
                    listed = f"{s[0]}" if len(s[0]) <= 20 else f"(list of length {len(s[0])})"
                    errors.append(_err("value_not_in_list", "Value not in list", f"{name}: '{value}' not in {listed}",
                                       {"input_name": name, "input_config": s if len(s[0]) <= 20 else None,
                                        "received_value": value}))
            if errors:
                node_errors[nid] = {"errors": errors, "dependent_outputs": outputs, "class_type": node["class_type"]}
        if node_errors:
            return _err("prompt_outputs_failed_validation", "Prompt outputs failed validation"), node_errors
        return None, {}

    async def h_prompt(self, request):
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=500, text="500 Internal Server Error")
        graph = body.get("prompt")
        if graph is None:
            return web.json_response({"error": _err("no_prompt", "No prompt provided", "No prompt provided"),
                                      "node_errors": {}}, status=400)
        if self.v033 and isinstance(graph, dict):
            graph = apply_node_replacements(graph, self.object_info())
        error, node_errors = self.validate(graph)
        if error:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        pid = str(body.get("prompt_id") or uuid.uuid4())
        if self.v033 and body.get("prompt_id") is not None:
            try:
                valid = str(uuid.UUID(str(body["prompt_id"]))) == body["prompt_id"]
            except ValueError:
                valid = False
            if not valid:
                return web.json_response({"error": _err("invalid_prompt_id", "prompt_id must be a valid UUID"),
                                          "node_errors": {}}, status=400)
        number = next(self.counter)
        extra = dict(body.get("extra_data") or {})
        if body.get("client_id"):
            extra["client_id"] = body["client_id"]
        info = self.object_info()
        outputs = sorted(nid for nid, n in graph.items() if info[n["class_type"]].get("output_node"))
        heapq.heappush(self.queue, (number, pid, graph, extra, outputs))
        self.submitted.append(pid)
        self.graphs[pid] = graph
        await self._status()
        self._wake.set()
        return web.json_response({"prompt_id": pid, "number": number, "node_errors": {}})

    async def h_prompt_info(self, request):
        return web.json_response({"exec_info": {"queue_remaining": self._remaining()}})

    def _remaining(self) -> int:
        return len(self.queue) + (1 if self.running else 0)

    async def h_queue(self, request):
        running = [list(self._running_item)] if self.running else []
        return web.json_response({"queue_running": running, "queue_pending": [list(i) for i in self.queue]})

    async def h_queue_post(self, request):
        body = await request.json()
        if body.get("clear"):
            self.queue.clear()
        for pid in body.get("delete", []):
            self.deleted.append(pid)
            self.queue = [i for i in self.queue if i[1] != pid]
            heapq.heapify(self.queue)
        await self._status()
        return web.Response(status=200)

    async def h_history_one(self, request):
        pid = request.match_info["pid"]
        return web.json_response({pid: self.history[pid]} if pid in self.history else {})

    async def h_history(self, request):
        n = int(request.query.get("max_items", 10000))
        return web.json_response(dict(list(self.history.items())[-n:]))

    async def h_history_post(self, request):
        body = await request.json()
        if body.get("clear"):
            self.history.clear()
        for pid in body.get("delete", []):
            self.history.pop(pid, None)
        return web.Response(status=200)

    async def h_interrupt(self, request):
        try:
            body = await request.json()
        except ValueError:
            body = {}
        pid = (body or {}).get("prompt_id")
        if self.running and (pid is None or pid == self.running):
            self.interrupt_flag = True
            self.interrupted.append(self.running)
        return web.Response(status=200)

    # ------------------------------------------------------------------ files

    async def h_view(self, request):
        name = request.query.get("filename", "")
        sub = request.query.get("subfolder", "")
        kind = request.query.get("type", "output")
        if not name or name.startswith("/") or ".." in name:
            return web.Response(status=400)
        base = (self.dir / kind).resolve()
        path = (base / sub / name).resolve()
        if not str(path).startswith(str(base)):
            return web.Response(status=403)
        if not path.is_file():
            return web.Response(status=404)
        ctype = {".png": "image/png", ".mp4": "video/mp4"}.get(path.suffix, "application/octet-stream")
        return web.Response(body=path.read_bytes(), content_type=ctype)

    async def h_upload(self, request):
        form = await request.post()
        f = form.get("image")
        if f is None or not hasattr(f, "file"):
            return web.Response(status=400)
        kind = form.get("type", "input")
        sub = form.get("subfolder", "")
        data = f.file.read()
        folder = self.dir / kind / sub
        folder.mkdir(parents=True, exist_ok=True)
        name = f.filename
        stem, suffix = Path(name).stem, Path(name).suffix
        n = 1
        while (folder / name).exists() and (folder / name).read_bytes() != data:
            name = f"{stem} ({n}){suffix}"
            n += 1
        if not (folder / name).exists():
            (folder / name).write_bytes(data)
            self.uploads.append(f"{sub}/{name}")
        return web.json_response({"name": name, "subfolder": sub, "type": kind})

    # ------------------------------------------------------------------ websocket

    async def h_ws(self, request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        old = self.sockets.get(sid)
        self.sockets[sid] = ws
        if old is not None:
            await old.close()
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": self._remaining()}},
                                                       "sid": sid}})
        if self.running and self.running_node and self._running_item[3].get("client_id") == sid:
            await ws.send_json({"type": "executing", "data": {"node": self.running_node,
                                                              "display_node": self.running_node,
                                                              "prompt_id": self.running}})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                data = json.loads(msg.data)
                if data.get("type") == "feature_flags":
                    await ws.send_json({"type": "feature_flags",
                                        "data": {"supports_preview_metadata": True, "max_upload_size": 104857600}})
        if self.sockets.get(sid) is ws:
            del self.sockets[sid]
        return ws

    async def _send(self, client_id, kind, data) -> None:
        ws = self.sockets.get(client_id)
        if ws is not None and not ws.closed:
            try:
                await ws.send_json({"type": kind, "data": data})
            except (ConnectionError, RuntimeError):
                pass

    async def _status(self) -> None:
        for sid in list(self.sockets):
            await self._send(sid, "status", {"status": {"exec_info": {"queue_remaining": self._remaining()}}})

    # ------------------------------------------------------------------ running prompts

    async def _work(self) -> None:
        while True:
            while not self.queue:
                self._wake.clear()
                await self._wake.wait()
            item = heapq.heappop(self.queue)
            self._running_item = item
            self.running = item[1]
            self.interrupt_flag = False
            try:
                await self._execute(*item)
            finally:
                self.running = None
                self.running_node = None

    async def _execute(self, number, pid, graph, extra, outputs) -> None:
        cid = extra.get("client_id")
        msgs = []

        async def event(kind, data, record=True):
            data = {**data, "prompt_id": pid}
            if kind.startswith("execution_"):
                data["timestamp"] = int(time.time() * 1000)
                if record:
                    msgs.append([kind, data])
            await self._send(cid, kind, data)

        await event("execution_start", {})
        await event("execution_cached", {"nodes": []})
        # the diffusion models it loads (checkpoint or UNETs): a load when they differ from the last graph's
        weights = " + ".join(sorted(n["inputs"].get("ckpt_name") or n["inputs"].get("unet_name") or ""
                                    for n in graph.values() if n["class_type"] in ("CheckpointLoaderSimple", "UNETLoader")))
        if weights and weights != self.loaded_checkpoint:
            self.loaded_checkpoint = weights
            self.loads.append(weights)
        if self.prompt_delay:  # a fixed time per render, whatever the graph (bench/render.py)
            await asyncio.sleep(self.prompt_delay)
        done, ui = [], {}
        status = "success"
        for nid in _order(graph):
            node = graph[nid]
            ct = node["class_type"]
            self.running_node = nid
            await event("executing", {"node": nid, "display_node": nid})
            if ct in self.drop_nodes:
                self.drop_nodes.discard(ct)
                await self._close_sockets()
            failure = self.fail.get(ct)
            if ct == "UpscaleModelLoader" and node["inputs"].get("model_name") not in self.models["upscale_models"]:
                failure = f"'{node['inputs'].get('model_name')}'\n"
            if failure:
                await event("execution_error", {"node_id": nid, "node_type": ct, "executed": done,
                                                "exception_message": failure, "exception_type": "RuntimeError",
                                                "traceback": ["  File \"<ComfyUI>/execution.py\", line 496\n"],
                                                "current_inputs": {}, "current_outputs": done})
                status = "error"
                break
            steps = int(node["inputs"].get("steps", 0)) if ct == "KSampler" else 0
            interrupted = False
            for step in range(1, steps + 1):
                await asyncio.sleep(self.step_delay)
                if self.interrupt_flag:
                    interrupted = True
                    break
                await event("progress", {"value": step, "max": steps, "node": nid})
            if self.node_delay:
                await asyncio.sleep(self.node_delay)
            if interrupted or self.interrupt_flag:
                await event("execution_interrupted", {"node_id": nid, "node_type": ct, "executed": done})
                status = "interrupted"
                break
            await event("progress_state", {"nodes": {nid: {"value": 1.0, "max": 1.0, "state": "finished",
                                                          "node_id": nid, "prompt_id": pid, "display_node_id": nid,
                                                          "parent_node_id": None, "real_node_id": nid}}})
            if nid in outputs:
                out = await asyncio.get_running_loop().run_in_executor(None, self._write_output, graph, nid)
                ui[nid] = out
                await event("executed", {"node": nid, "display_node": nid, "output": out})
            done.append(nid)
        if status == "success":
            await event("execution_success", {})
            self.executed.append(pid)
        self.history[pid] = {
            "prompt": [number, pid, graph, extra, outputs], "outputs": ui if status == "success" else {},
            "status": {"status_str": "success" if status == "success" else "error", "completed": status == "success",
                       "messages": msgs},
            "meta": {nid: {"node_id": nid, "display_node": nid, "parent_node": None, "real_node_id": nid} for nid in ui}}
        await self._status()
        await event("executing", {"node": None}, record=False)

    def _write_audio(self, graph: dict, node: dict, folder: Path, sub: str, stem: str, n: int) -> dict:
        """What ComfyUI's audio savers write: 44.1 kHz stereo (ACE-Step's rate) as long as the latent
        asked for, a tone the seed picks; listed under "audio" as the real server does."""
        fmt = AUDIO_SAVERS[node["class_type"]]
        name = f"{stem}_{n:05}_.{fmt}"
        codec = {"flac": ["-c:a", "flac"], "mp3": ["-c:a", "libmp3lame"], "opus": ["-c:a", "libopus"]}[fmt]
        subprocess.run([find_ffmpeg().path, "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"sine=frequency={_tone(_seed(graph))}:sample_rate=44100:duration={_audio_seconds(graph, node)}",
                        "-ac", "2", *codec, str(folder / name)], check=True)
        return {"audio": [{"filename": name, "subfolder": sub, "type": "output"}]}

    def _write_output(self, graph: dict, nid: str) -> dict:
        node = graph[nid]
        if node["class_type"] == "PreviewAny":
            return {"text": [json.dumps(node["inputs"].get("source"))]}
        prefix = node["inputs"].get("filename_prefix", "ComfyUI")
        sub, _, stem = prefix.rpartition("/")
        folder = self.dir / "output" / sub
        folder.mkdir(parents=True, exist_ok=True)
        n = next(self.outputs_counter)
        if node["class_type"] in AUDIO_SAVERS:
            return self._write_audio(graph, node, folder, sub, stem, n)
        width, height, frames, fps = _picture(graph, nid, self)
        seed = _seed(graph)
        if node["class_type"] in ("SaveImage", "PreviewImage"):
            name = f"{stem}_{n:05}_.png"
            color = tuple(hashlib.sha256(str(seed).encode()).digest()[:3])
            Image.new("RGB", (width, height), color).save(folder / name)
            return {"images": [{"filename": name, "subfolder": sub, "type": "output"}]}
        name = f"{stem}_{n:05}.mp4"
        subprocess.run([find_ffmpeg().path, "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"testsrc2=s={width}x{height}:r={fps}", "-frames:v", str(frames), "-pix_fmt", "yuv420p",
                        str(folder / name)], check=True)
        entry = {"filename": name, "subfolder": sub, "type": "output"}
        if node["class_type"] == "VHS_VideoCombine":
            return {"gifs": [{**entry, "format": "video/h264-mp4", "frame_rate": float(fps),
                              "workflow": name.replace(".mp4", ".png"), "fullpath": f"<ComfyUI>/output/{sub}/{name}"}]}
        return {"images": [entry], "animated": [True]}


AUDIO_SAVERS = {"SaveAudio": "flac", "SaveAudioMP3": "mp3", "SaveAudioOpus": "opus"}


def _audio_seconds(graph: dict, node: dict) -> float:
    """How long the audio reaching a save node is: the seconds of the empty audio latent it came from."""
    link = node["inputs"].get("audio")
    while isinstance(link, list):
        src = graph[link[0]]
        if "seconds" in src["inputs"] and src["class_type"].startswith("Empty"):
            return float(src["inputs"]["seconds"])
        link = next((src["inputs"][k] for k in ("audio", "samples", "latent_image") if isinstance(src["inputs"].get(k), list)),
                    None)
    return 1.0


def _order(graph: dict) -> list[str]:
    """Node ids in an order where every node comes after the nodes it links to."""
    seen, out = set(), []

    def visit(nid):
        if nid in seen or nid not in graph:
            return
        seen.add(nid)
        for v in graph[nid].get("inputs", {}).values():
            if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
                visit(v[0])
        out.append(nid)

    for nid in sorted(graph):
        visit(nid)
    return out


def made_by(graph: dict) -> str:
    """What a storylang graph makes, by its output's name: a shot's id, "1.still", "sheet.MARA"."""
    return graph["save"]["inputs"]["filename_prefix"].removeprefix("storylang/shot_")


def _seed(graph: dict) -> int:
    return next((n["inputs"].get("seed", 0) for n in graph.values() if n["class_type"] == "KSampler"), 0)


def _picture(graph: dict, nid: str, server: FakeComfy) -> tuple[int, int, int, float]:
    """(width, height, frames, fps) of what the output node `nid` receives, followed through the graph."""
    node = graph[nid]
    fps = float(node["inputs"].get("frame_rate", 24))
    width, height, frames = 64, 64, 1

    def follow(link):
        nonlocal width, height, fps
        src = graph[link[0]]
        ct, ins = src["class_type"], src["inputs"]
        if ct in ("EmptyLatentImage", "EmptySD3LatentImage", "EmptyFlux2LatentImage"):
            width, height = ins["width"], ins["height"]
            return ins["batch_size"]
        if ct in ("EmptyHunyuanLatentVideo", "WanFirstLastFrameToVideo", "EmptyHunyuanVideo15Latent",
                  "Wan22ImageToVideoLatent", "WanImageToVideo", "HunyuanVideo15ImageToVideo",
                  "WanSoundImageToVideo"):  # 4x temporal compression: 4n+1 frames
            width, height = ins["width"], ins["height"]
            return (ins["length"] - 1) // 4 * 4 + 1
        if ct in ("EmptyLTXVLatentVideo", "LTXVImgToVideo"):  # LTX: 8x temporal compression, 8n+1 frames
            width, height = ins["width"], ins["height"]
            return (ins["length"] - 1) // 8 * 8 + 1
        if ct == "ImageScale":
            n = follow(ins["image"])
            width, height = ins["width"], ins["height"]
            return n
        if ct == "RIFE VFI":
            return (follow(ins["frames"]) - 1) * ins["multiplier"] + 1
        if ct == "ImageFromBatch":
            return min(ins["length"], follow(ins["image"]) - ins["batch_index"])
        if ct == "CreateVideo":
            fps = float(ins["fps"])
            return follow(ins["images"])
        if ct == "LoadVideo":
            return _video_frames(server.dir / "input" / ins["file"])
        for key in ("samples", "images", "image", "video", "latent_image", "pixels", "frames", "positive",
                    "av_latent", "video_latent"):
            if isinstance(ins.get(key), list):
                return follow(ins[key])
        return 1

    for key in ("images", "video"):
        if isinstance(node["inputs"].get(key), list):
            frames = follow(node["inputs"][key])
    return width, height, max(frames, 1), fps


def _tone(seed: int) -> int:
    return 220 + int(hashlib.sha256(str(seed).encode()).hexdigest()[:4], 16) % 440


def _video_frames(path: Path) -> int:
    import re

    out = subprocess.run([find_ffmpeg().path, "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                         capture_output=True, text=True).stderr
    found = re.findall(r"frame=\s*(\d+)", out)
    return int(found[-1]) if found else 1


def png_bytes(size=(64, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 20, 30)).save(buf, format="PNG")
    return buf.getvalue()
