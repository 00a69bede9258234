"""ComfyUI through its HTTP and websocket API, over aiohttp (``type = "comfyui"``).

Workflows are API-format templates named in config, with bindings checked at start
(``providers/comfy_workflow.py``): ``workflow`` for text-to-image, and optionally
``img2img_workflow`` (image input and variations) and ``upscale_workflow``. What the bindings
cover is what the provider declares it can do.

One call: a websocket ``/ws?clientId=<id>`` per call, an input image uploaded with
``/upload/image`` when there is one, then ``POST /prompt`` with the same ``client_id`` (and a
``prompt_id`` of our own, which newer builds keep). ``progress`` messages become step counts,
binary frames (type 1: a 4-byte format, then JPEG or PNG bytes) become live previews; the run
ends on ``executing`` with no node. The images come from ``/history/{prompt_id}`` and
``/view``. If the socket drops, ``/history`` is polled instead. A cancelled call interrupts
the prompt if it is running (``/interrupt``) or deletes it from the queue if it is waiting.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import struct
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

import aiohttp
from pydantic import Field, SecretStr, field_validator

from bot import images
from bot.clock import Clock
from bot.errors import BadImage, ProviderBadRequest, ProviderError, ProviderTimeout, ProviderUnavailable
from bot.generation import Capabilities, GeneratedImage, Health, ProgressCallback, ProgressUpdate, ProviderCall
from bot.request import AspectRatio, JobKind
from providers.base import BaseProvider, ProviderSettings
from providers.comfy_workflow import Workflow, load_workflow
from providers.http_client import HttpClient, Unreachable, error_text
from providers.http_errors import classify, retry_after
from providers.pool import PooledSettings, Server, ServerPool
from providers.selfhosted import check_call, image_from, on_cancel, preview

log = logging.getLogger(__name__)
PREVIEW_IMAGE, PREVIEW_WITH_METADATA = 1, 4


class ComfyUISettings(PooledSettings):
    """``[providers.NAME]`` keys for ``type = "comfyui"``; see config.example.toml."""

    #: A label for the checkpoint the workflows load (stored with each image); the graph decides.
    model: str = "comfyui"
    workflow: str
    bindings: dict[str, str]
    #: Node (id or title) whose images are the result; unset: every output node's images.
    output: str | None = None
    img2img_workflow: str | None = None
    img2img_bindings: dict[str, str] = Field(default_factory=dict)
    upscale_workflow: str | None = None
    upscale_bindings: dict[str, str] = Field(default_factory=dict)
    #: Edge in pixels of a 1:1 image when width and height are bound; unset: the workflow's own.
    size: int | None = Field(default=None, ge=64, le=4096)
    max_images_per_call: int = Field(default=4, ge=1, le=16)
    #: Image-to-image and variations when the request gives no --strength.
    denoising_strength: float = Field(default=0.6, ge=0, le=1)
    #: Seconds between /history polls when the websocket has dropped.
    poll_seconds: float = Field(default=1.0, gt=0)

    @field_validator("api_key")
    @classmethod
    def _no_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raise ValueError("ComfyUI has no API key")
        return value


class ComfyUIProvider(BaseProvider):
    """ComfyUI workflows on one server or several; see the module docstring."""

    type_name: ClassVar[str] = "comfyui"
    Settings: ClassVar[type[ProviderSettings]] = ComfyUISettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, ComfyUISettings)
        self.options = s = settings
        key = f"providers.{name}"
        self.txt2img = load_workflow(s.workflow, s.bindings, key=f"{key}.bindings", output=s.output)
        self.img2img: Workflow | None = None
        self.upscaler: Workflow | None = None
        if s.img2img_workflow:
            self.img2img = load_workflow(s.img2img_workflow, s.img2img_bindings, key=f"{key}.img2img_bindings",
                                         required=("prompt", "image"), output=s.output)
        if s.upscale_workflow:
            self.upscaler = load_workflow(s.upscale_workflow, s.upscale_bindings, key=f"{key}.upscale_bindings",
                                          required=("image",), output=s.output)
        super().__init__(name, settings, clock=clock)
        if "concurrency" not in s.model_fields_set:
            self.concurrency = len(s.urls)  # each server runs one prompt at a time
        self.http = HttpClient(name, clock=self.clock, connect_timeout=s.connect_timeout_seconds,
                               read_timeout=s.timeout_seconds, on_error=self._error)
        self.pool = ServerPool(s.urls, provider=name, clock=self.clock, recheck_seconds=s.recheck_seconds,
                               probe=self._probe)

    def declare_capabilities(self) -> Capabilities:
        t = self.txt2img
        return Capabilities(
            aspect_ratios=None if t.has("width") else frozenset({"1:1"}),
            max_images_per_call=self.options.max_images_per_call if t.has("batch") else 1,
            negative_prompt=t.has("negative"), fold_negative_prompt=not t.has("negative"),
            seed=t.has("seed"), deterministic=t.has("seed"), image_input=self.img2img is not None,
            variation=self.img2img is not None, upscale=self.upscaler is not None, live_previews=True,
            steps=t.has("steps"), cfg=t.has("cfg"),
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        t = self.txt2img
        if t.has("width"):
            side = self.options.size or round((t.value("width") * t.value("height")) ** 0.5)
            return ratio.size_for(side * side, multiple=64)
        side = self.options.size or 512
        return side, side

    # --- generating --------------------------------------------------------------------------
    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        check_call(self.name, self.capabilities, call)
        workflow = self._workflow_for(call)
        try:
            async with asyncio.timeout(self.options.timeout_seconds):
                return await self.pool.run(lambda server: self._render(server, workflow, call, progress))
        except TimeoutError as exc:
            raise ProviderTimeout("ComfyUI gave no result in time", provider=self.name) from exc

    def _workflow_for(self, call: ProviderCall) -> Workflow:
        if call.request.kind is JobKind.UPSCALE:
            assert self.upscaler is not None  # checked against the capabilities
            return self.upscaler
        if call.init_image is not None:
            assert self.img2img is not None
            return self.img2img
        return self.txt2img

    def _values(self, workflow: Workflow, call: ProviderCall) -> dict[str, Any]:
        request = call.request
        values: dict[str, Any] = {
            "prompt": request.prompt, "negative": request.negative_prompt or "", "seed": call.seed,
            "width": call.width, "height": call.height, "batch": call.count,
            "denoise": request.strength if request.strength is not None else self.options.denoising_strength,
        }
        if request.steps is not None:
            values["steps"] = request.steps
        if request.cfg is not None:
            values["cfg"] = request.cfg
        return {k: v for k, v in values.items() if workflow.has(k)}

    async def _render(
        self, server: Server, workflow: Workflow, call: ProviderCall, progress: ProgressCallback
    ) -> list[GeneratedImage]:
        url = server.url
        values = self._values(workflow, call)
        if call.init_image is not None:
            values["image"] = await self._upload(url, call.init_image)
        client_id, prompt_id = uuid.uuid4().hex, str(uuid.uuid4())
        ws = await self._socket(url, client_id)
        try:
            body = {"prompt": workflow.fill(values), "client_id": client_id, "prompt_id": prompt_id}
            answer = await self.http.json("POST", f"{url}/prompt", json_body=body)
            if not isinstance(answer, dict) or not answer.get("prompt_id"):
                raise self.http.malformed("no prompt_id")
            prompt_id = str(answer["prompt_id"])
            if ws is not None:
                await _Follower(self, ws, prompt_id, progress).run()
            entry = await self._history(url, prompt_id)
        except (asyncio.CancelledError, ProviderTimeout):
            await on_cancel(lambda: self._stop(url, prompt_id), provider=self.name, what="interrupt")
            raise
        finally:
            if ws is not None:
                await ws.close()
        return await self._outputs(url, entry, workflow, call)

    async def _socket(self, url: str, client_id: str) -> aiohttp.ClientWebSocketResponse | None:
        """The progress websocket; None when the server (or a proxy) refuses the upgrade."""
        try:
            return await self.http.session.ws_connect(f"{url}/ws", params={"clientId": client_id},
                                                      timeout=aiohttp.ClientWSTimeout(ws_close=5), heartbeat=30)
        except aiohttp.WSServerHandshakeError as exc:
            log.warning("%s: no websocket at %s (HTTP %s); following prompts through /history, without previews",
                        self.name, url, exc.status)
            return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self.http.connection_error(exc, f"{url}/ws") from exc

    async def _upload(self, url: str, data: bytes) -> str:
        try:
            kind = images.image_info(data).format.lower()
        except BadImage as exc:
            raise ProviderBadRequest(f"the input image is unusable: {exc.message}", provider=self.name) from exc
        form = aiohttp.FormData()
        name = f"imaginebot-{hashlib.sha256(data).hexdigest()[:16]}.{'jpg' if kind == 'jpeg' else kind}"
        form.add_field("image", data, filename=name, content_type=f"image/{kind}")
        form.add_field("type", "input")
        form.add_field("overwrite", "true")
        answer = await self.http.json("POST", f"{url}/upload/image", data=form)
        if not isinstance(answer, dict) or not answer.get("name"):
            raise self.http.malformed("upload without a name")
        folder = str(answer.get("subfolder") or "")
        return f"{folder}/{answer['name']}" if folder else str(answer["name"])

    async def _history(self, url: str, prompt_id: str) -> Mapping[str, Any]:
        """The prompt's history entry, polled until the server has written it."""
        while True:
            found = await self.http.json("GET", f"{url}/history/{prompt_id}")
            entry = found.get(prompt_id) if isinstance(found, dict) else None
            if isinstance(entry, dict):
                status = entry.get("status") or {}
                if status.get("status_str") == "error":
                    raise _failure_from_messages(self.name, status.get("messages") or [])
                return entry
            await self.clock.sleep(self.options.poll_seconds)

    async def _outputs(
        self, url: str, entry: Mapping[str, Any], workflow: Workflow, call: ProviderCall
    ) -> list[GeneratedImage]:
        outputs = entry.get("outputs") or {}
        nodes = [workflow.output] if workflow.output else list(outputs)
        found = [img for node in nodes for img in (outputs.get(node) or {}).get("images", [])
                 if isinstance(img, dict) and img.get("filename")]
        saved = [img for img in found if img.get("type") == "output"] or found
        if not saved:
            raise ProviderBadRequest("the workflow made no images (does it end in a SaveImage node?)",
                                     provider=self.name)
        seed = call.seed if workflow.has("seed") else None
        made = []
        for index, img in enumerate(saved[: max(1, call.count)]):
            params = {"filename": str(img["filename"]), "subfolder": str(img.get("subfolder") or ""),
                      "type": str(img.get("type") or "output")}
            data = await self.http.read("GET", f"{url}/view", params=params)
            made.append(image_from(data, provider=self.name, model=self.model, seed=seed,
                                   info={"workflow": workflow.path.name, "batch_index": str(index)}))
        return made

    async def _stop(self, url: str, prompt_id: str) -> None:
        """Interrupt our prompt if it runs; take it off the queue if it waits."""
        queue = await self.http.json("GET", f"{url}/queue", read_timeout=5)
        queue = queue if isinstance(queue, dict) else {}

        def listed(part: str) -> bool:
            return any(isinstance(item, list) and len(item) > 1 and item[1] == prompt_id
                       for item in queue.get(part) or [])

        if listed("queue_running"):
            await self.http.json("POST", f"{url}/interrupt", json_body={"prompt_id": prompt_id}, read_timeout=5)
        elif listed("queue_pending"):
            await self.http.json("POST", f"{url}/queue", json_body={"delete": [prompt_id]}, read_timeout=5)

    # --- discovery, health and errors ---------------------------------------------------------
    async def models(self) -> list[str]:
        """Checkpoint files the servers offer (for a workflow's CheckpointLoaderSimple)."""
        info = await self.pool.run(
            lambda server: self.http.json("GET", f"{server.url}/object_info/CheckpointLoaderSimple"))
        try:
            return [str(n) for n in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]]
        except (KeyError, IndexError, TypeError):
            return []

    async def health(self) -> Health:
        return await self.pool.health()

    async def _probe(self, url: str) -> Health:
        try:
            await self.http.json("GET", f"{url}/system_stats", read_timeout=10)
        except Unreachable as exc:
            return Health(ok=False, detail=f"{exc.message}: is ComfyUI running, and is the address right?")
        except ProviderError as exc:
            return Health(ok=False, detail=exc.message if url in exc.message else f"{url}: {exc.message}")
        return Health(ok=True, detail=f"{url}: ok, workflow {self.txt2img.path.name}")

    def _error(self, url: str, status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        where = "/".join(url.split("/", 3)[:3])
        if status == 404 and url.endswith(("/prompt", "/system_stats")):
            return ProviderUnavailable(f"{where} answers, but it is not ComfyUI (no {url[len(where):]}): "
                                       "check the address", provider=self.name)
        if status == 400 and isinstance(body, dict) and "node_errors" in body:
            return ProviderBadRequest(f"ComfyUI rejected the workflow: {_node_errors(body)}", provider=self.name)
        return classify(self.name, status, error_text(body) or f"HTTP {status}",
                        retry_after=retry_after(headers, self.clock.now()))

    async def aclose(self) -> None:
        await self.http.aclose()


class _Follower:
    """Reads one prompt's websocket messages until it is done; reports steps and previews."""

    def __init__(self, provider: ComfyUIProvider, ws: aiohttp.ClientWebSocketResponse, prompt_id: str,
                 progress: ProgressCallback) -> None:
        self.provider, self.ws, self.prompt_id, self.progress = provider, ws, prompt_id, progress
        self.fraction: float | None = None
        self.text = "preview"
        self.running = False

    async def run(self) -> None:
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                if await self._event(message.data):
                    return
            elif message.type is aiohttp.WSMsgType.BINARY and self.running:
                await self._preview(message.data)
        log.info("%s: the websocket closed early; following the prompt through /history", self.provider.name)

    async def _event(self, text: str) -> bool:
        """Handle one JSON message; True when the prompt is finished."""
        try:
            event = json.loads(text)
            kind, data = event["type"], event.get("data") or {}
        except (ValueError, KeyError, TypeError):
            return False
        if data.get("prompt_id") not in (None, self.prompt_id):
            return False
        if kind == "status" and not self.running:
            waiting = ((data.get("status") or {}).get("exec_info") or {}).get("queue_remaining")
            if isinstance(waiting, int) and waiting > 1:
                await self.progress(ProgressUpdate(text="waiting in ComfyUI's queue", queue_position=waiting))
        elif kind in ("execution_start", "execution_cached", "executing"):
            self.running = True
            return kind == "executing" and data.get("node") is None
        elif kind == "progress" and data.get("max"):
            self.fraction = min(0.99, float(data["value"]) / float(data["max"]))
            self.text = f"step {data['value']}/{data['max']}"
            await self.progress(ProgressUpdate(fraction=self.fraction, text=self.text))
        elif kind == "execution_error":
            raise _execution_error(self.provider.name, data)
        elif kind == "execution_interrupted":
            raise ProviderUnavailable("the prompt was interrupted on the ComfyUI server", provider=self.provider.name)
        return False

    async def _preview(self, frame: bytes) -> None:
        if len(frame) < 8:
            return
        (kind,) = struct.unpack(">I", frame[:4])
        if kind == PREVIEW_IMAGE:
            data = frame[8:]
        elif kind == PREVIEW_WITH_METADATA:
            (size,) = struct.unpack(">I", frame[4:8])
            data = frame[8 + size:]
        else:
            return
        update = await preview(data, fraction=self.fraction, text=self.text, provider=self.provider.name)
        if update is not None:
            await self.progress(update)


def _node_errors(body: Mapping[str, Any]) -> str:
    parts = []
    for node_id, problem in (body.get("node_errors") or {}).items():
        for error in (problem or {}).get("errors", [])[:2]:
            detail = error.get("details") or error.get("message", "")
            parts.append(f"node {node_id} ({problem.get('class_type', '?')}): {detail}")
    if not parts:
        parts.append(error_text(body) or "invalid prompt")
    return "; ".join(parts)[:300]


def _execution_error(provider: str, data: Mapping[str, Any]) -> ProviderError:
    """A node raised: out of memory may pass (another server, later); anything else is the workflow's fault."""
    message = f"the workflow failed in node {data.get('node_id')} ({data.get('node_type')}): " \
              f"{str(data.get('exception_message', '')).strip()}"
    if "out of memory" in message.lower():
        return ProviderUnavailable(message, provider=provider)
    return ProviderBadRequest(message, provider=provider)


def _failure_from_messages(provider: str, messages: list[Any]) -> ProviderError:
    for item in messages:
        if isinstance(item, list) and len(item) == 2 and item[0] == "execution_error":
            return _execution_error(provider, item[1] or {})
    return ProviderUnavailable("the prompt failed on the ComfyUI server", provider=provider)
