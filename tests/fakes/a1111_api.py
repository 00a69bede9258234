"""A fake AUTOMATIC1111/Forge WebUI API (``/sdapi/v1``), for the a1111 provider's real aiohttp client.

It behaves as the research notes describe (../shared/research/providers.md section 4): one job at
a time (a lock, like the WebUI's ``queue_lock``); ``txt2img``/``img2img`` hold the request while
``/progress`` advances the job one tick per poll (``ticks_per_job`` polls finish it, so a client
that never polls never gets its image) and reports ``current_task`` from ``force_task_id`` and a
live ``current_image``; ``/interrupt`` ends the running job at once; answers carry bare base64
PNGs (a grid first for batches, as ``return_grid`` does) and ``info`` as a JSON *string*.
Requests are checked: known keys only, ``steps`` set explicitly (the WebUI default is 50), a
listed sampler (else 400 "Sampler not found"), sizes in multiples of 8, decodable init images
(else 404 "Init image not found"). Broken rules land in ``violations``.

Setup modes: ``api=False`` is a WebUI started without ``--api`` (every ``/sdapi`` route is 404
``{"detail": "Not Found"}`` while ``/`` serves the UI); ``auth="user:pass"`` is ``--api-auth``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot import images as imaging
from tests.fakes.provider_http import FakeServer, Received, png

MODELS = [
    {"title": "sd_xl_base_1.0.safetensors [31e35c80fc]", "model_name": "sd_xl_base_1.0", "hash": "31e35c80fc",
     "sha256": "31e35c80fc" * 6, "filename": "/models/sd_xl_base_1.0.safetensors", "config": None},
    {"title": "v1-5-pruned-emaonly.safetensors [6ce0161689]", "model_name": "v1-5-pruned-emaonly",
     "hash": "6ce0161689", "sha256": "6ce0161689" * 6, "filename": "/models/v1-5.safetensors", "config": None},
]
SAMPLERS = ["Euler a", "Euler", "DPM++ 2M", "DDIM"]
UPSCALERS = ["None", "Lanczos", "R-ESRGAN 4x+"]
_COMMON = {
    "prompt", "negative_prompt", "styles", "seed", "subseed", "subseed_strength", "seed_resize_from_h",
    "seed_resize_from_w", "sampler_name", "scheduler", "batch_size", "n_iter", "steps", "cfg_scale", "width",
    "height", "restore_faces", "tiling", "do_not_save_samples", "do_not_save_grid", "eta", "s_min_uncond",
    "s_churn", "s_tmax", "s_tmin", "s_noise", "override_settings", "override_settings_restore_afterwards",
    "refiner_checkpoint", "refiner_switch_at", "disable_extra_networks", "comments", "sampler_index",
    "script_name", "script_args", "send_images", "save_images", "alwayson_scripts", "force_task_id", "infotext",
}
TXT2IMG_KEYS = _COMMON | {"enable_hr", "firstphase_width", "firstphase_height", "hr_scale", "hr_upscaler",
                          "hr_second_pass_steps", "hr_resize_x", "hr_resize_y", "denoising_strength"}
IMG2IMG_KEYS = _COMMON | {"init_images", "resize_mode", "image_cfg_scale", "mask", "mask_blur", "inpainting_fill",
                          "inpaint_full_res", "inpaint_full_res_padding", "inpainting_mask_invert",
                          "initial_noise_multiplier", "include_init_images", "denoising_strength"}


def a1111_error(status: int, detail: str) -> web.Response:
    """The WebUI's middleware error shape."""
    body = {"error": "HTTPException", "detail": detail, "body": "", "errors": ""}
    return web.json_response(body, status=status)


@dataclass
class _Job:
    task: str
    steps: int
    width: int
    height: int
    ticks: int
    tick: int = 0
    interrupted: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def advance(self) -> None:
        self.tick += 1
        if self.tick >= self.ticks:
            self.done.set()

    @property
    def step(self) -> int:
        return min(self.steps, self.tick * self.steps // max(1, self.ticks))


class FakeA1111(FakeServer):
    """The WebUI's API on 127.0.0.1; ``received`` holds every request, ``violations`` every broken rule."""

    def __init__(self, *, api: bool = True, auth: str | None = None, ticks_per_job: int = 2,
                 live_previews: bool = True) -> None:
        super().__init__()
        self.api = api
        self.auth = auth
        self.ticks_per_job = ticks_per_job
        #: The WebUI's "show progress every N steps" option: 0 means no current_image.
        self.live_previews = live_previews
        #: Jobs run until interrupted, however often progress is polled.
        self.hold = False
        self.violations: list[str] = []
        self.current: _Job | None = None
        self.started = asyncio.Event()
        self._gpu = asyncio.Lock()
        self._foreign: asyncio.Task[None] | None = None

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/", self._ui)
        app.router.add_post("/sdapi/v1/txt2img", self._txt2img)
        app.router.add_post("/sdapi/v1/img2img", self._img2img)
        app.router.add_get("/sdapi/v1/progress", self._progress)
        app.router.add_post("/sdapi/v1/interrupt", self._interrupt)
        app.router.add_post("/sdapi/v1/extra-single-image", self._extras)
        app.router.add_get("/sdapi/v1/sd-models", self._listing)
        app.router.add_get("/sdapi/v1/samplers", self._listing)
        app.router.add_get("/sdapi/v1/options", self._listing)

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    @property
    def interrupts(self) -> int:
        return self.paths().count("/sdapi/v1/interrupt")

    # --- a job someone else runs (a person using the WebUI's own page) -------------------------
    async def occupy(self, task: str = "task(someone-else)") -> _Job:
        """Start a job that is not ours; it runs until :meth:`release` (or an interrupt)."""
        job = _Job(task=task, steps=20, width=64, height=64, ticks=10**9)
        ready = asyncio.Event()

        async def run() -> None:
            async with self._gpu:
                self.current = job
                ready.set()
                await job.done.wait()
                self.current = None

        self._foreign = asyncio.create_task(run())
        await ready.wait()
        return job

    def release(self, job: _Job) -> None:
        job.done.set()

    # --- handlers ----------------------------------------------------------------------------
    async def _guard(self, request: web.Request, body: Any = None) -> web.Response | None:
        self.received.append(Received(request.method, request.path, dict(request.headers), json=body))
        if not self.api:
            return web.json_response({"detail": "Not Found"}, status=404)
        if self.auth is not None:
            expected = "Basic " + base64.b64encode(self.auth.encode()).decode()
            if request.headers.get("Authorization") != expected:
                return web.json_response({"detail": "Incorrect username or password"}, status=401,
                                         headers={"WWW-Authenticate": "Basic"})
        return None

    async def _ui(self, request: web.Request) -> web.Response:
        self.received.append(Received(request.method, request.path, dict(request.headers)))
        return web.Response(text="<!doctype html><title>Stable Diffusion</title>", content_type="text/html")

    async def _txt2img(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, TXT2IMG_KEYS)

    async def _img2img(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, IMG2IMG_KEYS)

    async def _generate(self, request: web.Request, keys: set[str]) -> web.StreamResponse:
        body = await request.json()
        if (refused := await self._guard(request, body)) is not None:
            return refused
        fault = self.next_fault()
        if fault is not None:
            return await fault.respond(request)
        if (problem := self._check(body, keys)) is not None:
            return problem
        job = _Job(task=str(body.get("force_task_id") or ""), steps=body["steps"], width=body["width"],
                   height=body["height"], ticks=10**9 if self.hold else self.ticks_per_job)
        async with self._gpu:
            self.current = job
            self.started.set()
            try:
                await job.done.wait()
            finally:
                self.current = None
        return web.json_response(self._answer(body, job))

    def _check(self, body: dict[str, Any], keys: set[str]) -> web.Response | None:
        problems = [f"unknown key {key}" for key in body if key not in keys]
        if "steps" not in body:
            problems.append("steps not set: the WebUI would use 50")
        if not isinstance(body.get("prompt"), str) or not body["prompt"]:
            problems.append("prompt missing")
        for side in ("width", "height"):
            if not isinstance(body.get(side), int) or body[side] % 8:
                problems.append(f"{side} must be a multiple of 8")
        if problems:
            self.violations += problems
            return web.json_response({"detail": [{"loc": ["body"], "msg": p, "type": "value_error"}
                                                 for p in problems]}, status=422)
        if body.get("sampler_name", "Euler") not in SAMPLERS:
            return a1111_error(400, "Sampler not found")
        if keys is IMG2IMG_KEYS:
            images = body.get("init_images") or []
            if not images or not _decodes(images[0]):
                return a1111_error(404, "Init image not found")
        return None

    def _answer(self, body: dict[str, Any], job: _Job) -> dict[str, Any]:
        seed = body.get("seed", -1)
        seed = 1234 if seed in (-1, None) else int(seed)
        count = int(body.get("batch_size", 1))
        seeds = [seed + i for i in range(count)]
        images = [png(job.width, job.height, f"{body['prompt']}|{s}") for s in seeds]
        if count > 1:  # return_grid: the grid comes first
            images.insert(0, png(job.width * 2, job.height, "grid"))
        checkpoint = (body.get("override_settings") or {}).get("sd_model_checkpoint", MODELS[0]["title"])
        info = {
            "prompt": body["prompt"], "all_prompts": [body["prompt"]] * count, "negative_prompt":
            body.get("negative_prompt", ""), "seed": seed, "all_seeds": seeds, "subseed": body.get("subseed", -1),
            "subseed_strength": body.get("subseed_strength", 0), "width": job.width, "height": job.height,
            "sampler_name": body.get("sampler_name"), "cfg_scale": body.get("cfg_scale"), "steps": job.steps,
            "batch_size": count, "sd_model_name": str(checkpoint).split(".")[0], "sd_model_hash": "31e35c80fc",
            "denoising_strength": body.get("denoising_strength"), "index_of_first_image": 1 if count > 1 else 0,
            "infotexts": [body["prompt"]] * count, "job_timestamp": "20260101120000", "version": "v1.10.1",
        }
        return {"images": [base64.b64encode(i).decode() for i in images], "parameters": body,
                "info": json.dumps(info)}

    async def _progress(self, request: web.Request) -> web.Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        job = self.current
        if job is None:
            return web.json_response({
                "progress": 0, "eta_relative": 0, "textinfo": None, "current_image": None, "current_task": None,
                "state": {"skipped": False, "interrupted": False, "job": "", "job_count": 0, "job_no": 0,
                          "sampling_step": 0, "sampling_steps": 0}})
        job.advance()
        fraction = min(1.0, 0.01 + job.step / max(1, job.steps))
        skip = request.query.get("skip_current_image", "false") == "true"
        image = None
        if self.live_previews and not skip and job.step:
            image = base64.b64encode(png(32, 32, f"{job.task}|{job.step}")).decode()
        return web.json_response({
            "progress": fraction, "eta_relative": 0.5, "textinfo": None, "current_image": image,
            "current_task": job.task or None,
            "state": {"skipped": False, "interrupted": job.interrupted, "job": "scripts_txt2img",
                      "job_count": 1, "job_no": 0, "sampling_step": job.step, "sampling_steps": job.steps}})

    async def _interrupt(self, request: web.Request) -> web.Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        if self.current is not None:
            self.current.interrupted = True
            self.current.done.set()
        return web.json_response({})

    async def _extras(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (refused := await self._guard(request, body)) is not None:
            return refused
        if body.get("upscaler_1") not in UPSCALERS:
            return a1111_error(404, f"Upscaler not found: {body.get('upscaler_1')}")
        source = _decodes(body.get("image", ""))
        if source is None:
            return a1111_error(400, "Invalid encoded image")
        info = imaging.image_info(source)
        factor = float(body.get("upscaling_resize", 2))
        big = png(int(info.width * factor), int(info.height * factor), "upscaled")
        return web.json_response({"image": base64.b64encode(big).decode(), "html_info": "<p></p>"})

    async def _listing(self, request: web.Request) -> web.Response:
        if (refused := await self._guard(request)) is not None:
            return refused
        if request.path.endswith("sd-models"):
            return web.json_response(MODELS)
        if request.path.endswith("samplers"):
            return web.json_response([{"name": n, "aliases": [], "options": {}} for n in SAMPLERS])
        return web.json_response({"sd_model_checkpoint": MODELS[0]["title"], "samples_format": "png",
                                  "show_progress_every_n_steps": 1 if self.live_previews else 0})


def _decodes(text: str) -> bytes | None:
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    return data if data.startswith(b"\x89PNG") or data[:3] == b"\xff\xd8\xff" or data[8:12] == b"WEBP" else None
