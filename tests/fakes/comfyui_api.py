"""A fake ComfyUI server (HTTP plus websocket), for the comfyui provider's real aiohttp client.

As the research notes describe it (../shared/research/providers.md section 5): ``/ws?clientId=``
sends ``status`` on connect; ``POST /prompt`` checks the graph like ComfyUI's validation does
(known node classes, required inputs, links to existing nodes, a checkpoint from the list, an
uploaded file in LoadImage, an output node) and answers ``node_errors`` with 400 when it fails;
one prompt runs at a time and only the socket whose ``clientId`` equals the prompt's
``client_id`` hears about it: ``execution_start``, ``executing``, ``progress`` per sampler step
with a binary preview frame (big-endian type 1, format 1 = JPEG, then the bytes), ``executed``,
``execution_success``, then ``executing`` with no node after the history is written. Results
come from ``/history/{id}`` and ``/view``; ``/upload/image`` stores inputs; ``/queue`` lists and
deletes; ``/interrupt`` stops the running prompt. Every route also answers under ``/api``.

Scripted trouble: ``hold`` (a prompt runs until interrupted), ``fail_with`` (an execution_error),
``drop_socket`` (the websocket closes mid-run), ``websocket = False`` (no websocket at all, as
behind a proxy that does not pass them), ``faults`` on ``/prompt``.
"""

from __future__ import annotations

import asyncio
import io
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web
from PIL import Image

from bot import images as imaging
from tests.fakes.provider_http import FakeServer, Received, png

CHECKPOINTS = ["v1-5-pruned-emaonly.safetensors", "sd_xl_base_1.0.safetensors"]
#: Required inputs per class (a link is [node, index]); what ComfyUI's object_info would list.
NODES: dict[str, list[str]] = {
    "CheckpointLoaderSimple": ["ckpt_name"],
    "EmptyLatentImage": ["width", "height", "batch_size"],
    "CLIPTextEncode": ["text", "clip"],
    "KSampler": ["seed", "steps", "cfg", "sampler_name", "scheduler", "denoise", "model", "positive", "negative",
                 "latent_image"],
    "VAEDecode": ["samples", "vae"],
    "VAEEncode": ["pixels", "vae"],
    "LoadImage": ["image"],
    "ImageScaleBy": ["image", "upscale_method", "scale_by"],
    "SaveImage": ["filename_prefix", "images"],
    "PreviewImage": ["images"],
}
OUTPUT_NODES = {"SaveImage", "PreviewImage"}


def jpeg(width: int, height: int, colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, "JPEG", quality=70)
    return out.getvalue()


def preview_frame(step: int) -> bytes:
    """A binary websocket frame: event 1 (preview), format 1 (JPEG), then the image."""
    return struct.pack(">II", 1, 1) + jpeg(32, 32, (step * 20 % 256, 80, 160))


@dataclass
class _Prompt:
    id: str
    number: int
    graph: dict[str, Any]
    client_id: str
    interrupted: bool = False
    stop: asyncio.Event = field(default_factory=asyncio.Event)


class FakeComfyUI(FakeServer):
    """ComfyUI on 127.0.0.1; ``received`` holds every HTTP request, ``violations`` every broken rule."""

    def __init__(self, *, steps_delay: float = 0.002) -> None:
        super().__init__()
        self.steps_delay = steps_delay
        self.hold = False
        self.fail_with: str | None = None
        self.drop_socket = False
        #: False: /ws answers 404, like a reverse proxy that does not pass websockets through.
        self.websocket = True
        self.violations: list[str] = []
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.uploads: dict[str, bytes] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.history: dict[str, Any] = {}
        self.pending: list[_Prompt] = []
        self.running: _Prompt | None = None
        self.started = asyncio.Event()
        self._counter = 0
        self._wake = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        for prefix in ("", "/api"):
            app.router.add_get(f"{prefix}/ws", self._ws)
            app.router.add_post(f"{prefix}/prompt", self._prompt)
            app.router.add_get(f"{prefix}/history/{{prompt_id}}", self._history)
            app.router.add_get(f"{prefix}/view", self._view)
            app.router.add_post(f"{prefix}/upload/image", self._upload)
            app.router.add_get(f"{prefix}/queue", self._queue)
            app.router.add_post(f"{prefix}/queue", self._queue_edit)
            app.router.add_post(f"{prefix}/interrupt", self._interrupt)
            app.router.add_get(f"{prefix}/system_stats", self._stats)
            app.router.add_get(f"{prefix}/object_info/{{cls}}", self._object_info)
        app.on_startup.append(self._start_worker)
        app.on_shutdown.append(self._stop_worker)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    async def _start_worker(self, app: web.Application) -> None:
        self._worker = asyncio.create_task(self._work())

    async def _stop_worker(self, app: web.Application) -> None:
        for ws in list(self.sockets.values()):
            await ws.close()
        if self._worker is not None:
            self._worker.cancel()

    # --- HTTP ----------------------------------------------------------------------------------
    def _record(self, request: web.Request, body: Any = None) -> None:
        self.received.append(Received(request.method, request.path, dict(request.headers), json=body))

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        if not self.websocket:
            return web.Response(status=404)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        client_id = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[client_id] = ws
        await ws.send_json({"type": "status", "data": {"status": {"exec_info": {"queue_remaining": self._load()}},
                                                       "sid": client_id}})
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                continue  # feature_flags and the like: nothing to do
        self.sockets.pop(client_id, None)
        return ws

    async def _prompt(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self._record(request, body)
        fault = self.next_fault()
        if fault is not None:
            return await fault.respond(request)
        client_id = body.get("client_id")
        if client_id not in self.sockets:
            self.violations.append("client_id does not match an open websocket: progress would go nowhere")
        graph = body.get("prompt")
        if not isinstance(graph, dict) or not graph:
            return web.json_response({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "",
                                                "extra_info": {}}, "node_errors": {}}, status=400)
        node_errors, error = self._validate(graph)
        if error is not None:
            return web.json_response({"error": error, "node_errors": node_errors}, status=400)
        self._counter += 1
        prompt = _Prompt(id=str(body.get("prompt_id") or uuid.uuid4()), number=self._counter, graph=graph,
                         client_id=str(client_id))
        self.pending.append(prompt)
        self._wake.set()
        return web.json_response({"prompt_id": prompt.id, "number": prompt.number, "node_errors": {}})

    def _validate(self, graph: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
        errors: dict[str, Any] = {}
        for node_id, node in graph.items():
            cls = node.get("class_type")
            if cls not in NODES:
                return {}, {"type": "invalid_prompt", "message": f"Cannot execute because node {cls} does not exist.",
                            "details": f"Node ID '#{node_id}'", "extra_info": {}}
            problems = []
            for name in NODES[cls]:
                value = node["inputs"].get(name)
                if value is None:
                    problems.append(_error("required_input_missing", "Required input is missing", name))
                elif isinstance(value, list) and str(value[0]) not in graph:
                    problems.append(_error("bad_linked_input", "Bad linked input", name))
            if cls == "CheckpointLoaderSimple" and node["inputs"].get("ckpt_name") not in CHECKPOINTS:
                problems.append(_error("value_not_in_list", "Value not in list", "ckpt_name",
                                       f"ckpt_name: '{node['inputs'].get('ckpt_name')}' not in {CHECKPOINTS}"))
            if cls == "LoadImage" and node["inputs"].get("image") not in self.uploads:
                problems.append(_error("custom_validation_failed", "Custom validation failed for node", "image",
                                       f"image - Invalid image file: {node['inputs'].get('image')}"))
            if cls == "KSampler" and not 0 <= int(node["inputs"].get("seed", 0)) < 2**64:
                problems.append(_error("value_bigger_than_max", "Value out of range", "seed"))
            if problems:
                errors[node_id] = {"errors": problems, "dependent_outputs": [], "class_type": cls}
        if errors:
            return errors, {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                            "details": "", "extra_info": {}}
        if not any(node["class_type"] in OUTPUT_NODES for node in graph.values()):
            return {}, {"type": "prompt_no_outputs", "message": "Prompt has no outputs", "details": "",
                        "extra_info": {}}
        return {}, None

    async def _history(self, request: web.Request) -> web.Response:
        self._record(request)
        prompt_id = request.match_info["prompt_id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def _view(self, request: web.Request) -> web.Response:
        self._record(request)
        q = request.query
        if ".." in q.get("filename", "") or q.get("subfolder", "").startswith("/"):
            return web.Response(status=403)
        data = self.files.get((q.get("filename", ""), q.get("subfolder", ""), q.get("type", "output")))
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="image/png",
                            headers={"Content-Disposition": f'filename="{q["filename"]}"'})

    async def _upload(self, request: web.Request) -> web.Response:
        form = await request.post()
        self._record(request)
        image = form.get("image")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        data = image.file.read()
        imaging.image_info(data)  # a broken upload would make the test fail loudly
        if form.get("type", "input") != "input":
            self.violations.append("inputs belong in the input folder")
        name = image.filename
        if name in self.uploads and form.get("overwrite") not in ("true", "1") and self.uploads[name] != data:
            name = name.replace(".", " (1).", 1)
        self.uploads[name] = data
        return web.json_response({"name": name, "subfolder": "", "type": "input"})

    async def _queue(self, request: web.Request) -> web.Response:
        self._record(request)
        running = [[p.number, p.id, p.graph, {}, []] for p in ([self.running] if self.running else [])]
        return web.json_response({"queue_running": running,
                                  "queue_pending": [[p.number, p.id, p.graph, {}, []] for p in self.pending]})

    async def _queue_edit(self, request: web.Request) -> web.Response:
        body = await request.json()
        self._record(request, body)
        delete = set(body.get("delete", []))
        self.pending = [p for p in self.pending if p.id not in delete and not body.get("clear")]
        return web.Response(status=200)

    async def _interrupt(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self._record(request, body)
        target = (body or {}).get("prompt_id")
        if self.running is not None and target in (None, self.running.id):
            self.running.interrupted = True
            self.running.stop.set()
        return web.Response(status=200)

    async def _stats(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"system": {"os": "posix", "comfyui_version": "0.3.40", "python_version": "3.11"},
                                  "devices": [{"name": "cuda:0", "type": "cuda", "vram_total": 8 << 30}]})

    async def _object_info(self, request: web.Request) -> web.Response:
        self._record(request)
        cls = request.match_info["cls"]
        if cls != "CheckpointLoaderSimple":
            return web.json_response({})
        return web.json_response({cls: {"input": {"required": {"ckpt_name": [CHECKPOINTS, {}]}},
                                        "output": ["MODEL", "CLIP", "VAE"], "name": cls}})

    # --- running prompts ---------------------------------------------------------------------
    def _load(self) -> int:
        return len(self.pending) + (1 if self.running else 0)

    async def _work(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                self.running = self.pending.pop(0)
                try:
                    await self._execute(self.running)
                finally:
                    self.running = None

    async def _send(self, prompt: _Prompt, kind: str, data: dict[str, Any] | bytes) -> None:
        ws = self.sockets.get(prompt.client_id)
        if ws is None or ws.closed:
            return
        if isinstance(data, bytes):
            await ws.send_bytes(data)
        else:
            await ws.send_json({"type": kind, "data": {**data, "prompt_id": prompt.id}})

    async def _execute(self, prompt: _Prompt) -> None:
        self.started.set()
        graph = prompt.graph
        await self._send(prompt, "execution_start", {"timestamp": int(time.time() * 1000)})
        sampler = next((nid for nid, n in graph.items() if n["class_type"] == "KSampler"), None)
        steps = int(graph[sampler]["inputs"]["steps"]) if sampler else 1
        for step in range(1, steps + 1):
            if sampler is None:
                break
            await self._send(prompt, "executing", {"node": sampler, "display_node": sampler})
            await self._send(prompt, "progress", {"value": step, "max": steps, "node": sampler})
            await self._send(prompt, "", preview_frame(step))
            if self.drop_socket and step == 1 and (ws := self.sockets.get(prompt.client_id)) is not None:
                await ws.close()
            if self.hold:
                await prompt.stop.wait()
            elif self.steps_delay:
                await asyncio.sleep(self.steps_delay)
            if prompt.interrupted:
                await self._send(prompt, "execution_interrupted", {"node_id": sampler, "node_type": "KSampler",
                                                                    "executed": []})
                self.history[prompt.id] = _entry(prompt, {}, "error", [["execution_interrupted", {}]])
                return
        if self.fail_with is not None:
            error = {"node_id": sampler, "node_type": "KSampler", "executed": [], "exception_message":
                     self.fail_with, "exception_type": "RuntimeError", "traceback": []}
            await self._send(prompt, "execution_error", error)
            self.history[prompt.id] = _entry(prompt, {}, "error", [["execution_error", error]])
            return
        outputs = self._outputs(prompt)
        for node_id, output in outputs.items():
            await self._send(prompt, "executed", {"node": node_id, "display_node": node_id, "output": output})
        await self._send(prompt, "execution_success", {"timestamp": int(time.time() * 1000)})
        self.history[prompt.id] = _entry(prompt, outputs, "success", [["execution_success", {}]])
        await self._send(prompt, "executing", {"node": None})

    def _outputs(self, prompt: _Prompt) -> dict[str, Any]:
        graph = prompt.graph
        width, height, batch = 512, 512, 1
        for node in graph.values():
            if node["class_type"] == "EmptyLatentImage":
                width, height, batch = node["inputs"]["width"], node["inputs"]["height"], node["inputs"]["batch_size"]
            if node["class_type"] == "LoadImage":
                info = imaging.image_info(self.uploads[node["inputs"]["image"]])
                width, height = info.width, info.height
        for node in graph.values():
            if node["class_type"] == "ImageScaleBy":
                width, height = int(width * node["inputs"]["scale_by"]), int(height * node["inputs"]["scale_by"])
        text = " ".join(str(n["inputs"].get("text", "")) for n in graph.values())
        outputs = {}
        for node_id, node in graph.items():
            if node["class_type"] not in OUTPUT_NODES:
                continue
            kind = "output" if node["class_type"] == "SaveImage" else "temp"
            saved = []
            for i in range(batch):
                name = f"{node['inputs'].get('filename_prefix', 'ComfyUI')}_{prompt.number:05d}_{i}_.png"
                self.files[(name, "", kind)] = png(width, height, f"{text}|{i}")
                saved.append({"filename": name, "subfolder": "", "type": kind})
            outputs[node_id] = {"images": saved}
        return outputs


def _error(kind: str, message: str, name: str, details: str = "") -> dict[str, Any]:
    return {"type": kind, "message": message, "details": details or name,
            "extra_info": {"input_name": name}}


def _entry(prompt: _Prompt, outputs: dict[str, Any], status: str, messages: list[Any]) -> dict[str, Any]:
    return {"prompt": [prompt.number, prompt.id, prompt.graph, {}, list(outputs)], "outputs": outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": messages},
            "meta": {}}
