"""AUTOMATIC1111 / Forge WebUI through its ``/sdapi/v1`` API, over aiohttp (``type = "a1111"``).

txt2img, img2img for image input and variations (denoising strength from ``--strength``, plus a
variation seed mixed in at ``variation_seed_strength``) and 2x upscales through
``extra-single-image``. The WebUI answers txt2img only when the image is done, so while that
call is in flight ``/sdapi/v1/progress`` is polled every ``progress_seconds`` (injected clock)
for the step count and the live preview (``current_image``), matched to our call by its
``force_task_id``. A cancelled call sends ``/sdapi/v1/interrupt`` (unless the server is busy
with someone else's task) and the cancellation goes on up. The checkpoint in ``model`` is
chosen per request with ``override_settings``; the seeds come back from the ``info`` JSON.

Several servers can sit behind one alias (``providers/pool.py``). Setup mistakes get a hint:
nothing answering (is the WebUI running?), a WebUI without ``--api``, a login wanted
(``--api-auth``); trailing slashes and a pasted ``/sdapi/v1`` are dropped from addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator

from bot.clock import Clock
from bot.errors import ProviderBadRequest, ProviderError, ProviderQuota, ProviderTimeout, ProviderUnavailable
from bot.generation import Capabilities, GeneratedImage, Health, ProgressCallback, ProgressUpdate, ProviderCall
from bot.request import MAX_SEED, AspectRatio, JobKind
from providers.base import BaseProvider, ProviderSettings
from providers.cloud import decode_base64
from providers.http_client import HttpClient, Unreachable, error_text
from providers.http_errors import classify, redact, retry_after
from providers.pool import PooledSettings, Server, ServerPool
from providers.selfhosted import b64, check_call, check_upscale_size, image_from, on_cancel, preview

log = logging.getLogger(__name__)
API = "/sdapi/v1"


class ApiMissing(ProviderUnavailable):
    """The server answers, but not at ``/sdapi/v1``: the WebUI runs without ``--api``."""


class A1111Settings(PooledSettings):
    """``[providers.NAME]`` keys for ``type = "a1111"``; see config.example.toml."""

    #: Checkpoint title (as in /sdapi/v1/sd-models) set per request; "" keeps the loaded one.
    model: str = ""
    #: "user:pass" when the WebUI runs with --api-auth.
    api_auth: SecretStr | None = None
    sampler: str = "Euler a"
    scheduler: str | None = None
    steps: int = Field(default=25, ge=1, le=150)
    cfg: float = Field(default=7.0, ge=0, le=30)
    #: Edge in pixels of a 1:1 image; other ratios keep about the same area (multiples of 64).
    size: int = Field(default=512, ge=64, le=4096)
    max_images_per_call: int = Field(default=4, ge=1, le=16)
    #: img2img and variations when the request gives no --strength (0 keeps the source, 1 ignores it).
    denoising_strength: float = Field(default=0.6, ge=0, le=1)
    #: Variation seed (subseed) strength mixed into variations; 0 turns it off.
    variation_seed_strength: float = Field(default=0.2, ge=0, le=1)
    upscaler: str = "R-ESRGAN 4x+"
    upscale_factor: float = Field(default=2.0, ge=1, le=4)
    #: Seconds between progress polls while an image renders.
    progress_seconds: float = Field(default=0.75, gt=0)
    #: Ask for live previews (the WebUI must have "show progress every N steps" on).
    live_previews: bool = True

    @classmethod
    def url_suffixes(cls) -> tuple[str, ...]:
        return (API,)

    @field_validator("api_key")
    @classmethod
    def _no_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            raise ValueError('the WebUI has no API key; for --api-auth set api_auth = "user:pass"')
        return value

    @field_validator("api_auth")
    @classmethod
    def _user_pass(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and ":" not in value.get_secret_value():
            raise ValueError('api_auth is "user:pass", as given to --api-auth')
        return value


class A1111Provider(BaseProvider):
    """AUTOMATIC1111/Forge on one server or several; see the module docstring."""

    type_name: ClassVar[str] = "a1111"
    Settings: ClassVar[type[ProviderSettings]] = A1111Settings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, A1111Settings)
        self.options = settings
        super().__init__(name, settings, clock=clock)
        urls = settings.urls
        if "concurrency" not in settings.model_fields_set:
            self.concurrency = len(urls)  # the WebUI renders one job at a time
        auth = settings.api_auth.get_secret_value() if settings.api_auth else None
        self.http = HttpClient(
            name, clock=self.clock, secret=auth.partition(":")[2] if auth else None,
            auth_headers={"Authorization": "Basic " + b64(auth.encode())} if auth else None,
            connect_timeout=settings.connect_timeout_seconds, read_timeout=settings.timeout_seconds,
            on_error=self._error,
        )
        self.pool = ServerPool(urls, provider=name, clock=self.clock,
                               recheck_seconds=settings.recheck_seconds, probe=self._probe)

    def declare_capabilities(self) -> Capabilities:
        return Capabilities(
            aspect_ratios=None, max_images_per_call=self.options.max_images_per_call, negative_prompt=True,
            seed=True, deterministic=True, image_input=True, variation=True, upscale=True,
            live_previews=self.options.live_previews, steps=True, cfg=True,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        return ratio.size_for(self.options.size ** 2, multiple=64)

    # --- generating --------------------------------------------------------------------------
    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        check_call(self.name, self.capabilities, call)
        if call.request.kind is JobKind.UPSCALE:
            assert call.init_image is not None
            check_upscale_size(self.name, call.init_image, self.options.upscale_factor)
            await progress(ProgressUpdate(text=f"upscaling with {self.options.upscaler}"))
            return await self.pool.run(lambda server: self._upscale(server, call))
        return await self.pool.run(lambda server: self._render(server, call, progress))

    async def _render(self, server: Server, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        task_id = f"task(imaginebot-{uuid.uuid4().hex[:12]})"
        route, body = self._payload(call, task_id)
        watcher = asyncio.create_task(self._watch(server.url, task_id, progress))
        try:
            answer = await self.http.json("POST", f"{server.url}{API}/{route}", json_body=body)
        except (asyncio.CancelledError, ProviderTimeout):
            # Cancelled, or past our timeout: the WebUI would go on rendering for nobody.
            await on_cancel(lambda: self._interrupt(server.url, task_id), provider=self.name, what="interrupt")
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        return self._images(answer, call)

    def _payload(self, call: ProviderCall, task_id: str) -> tuple[str, dict[str, Any]]:
        s, request = self.options, call.request
        body: dict[str, Any] = {
            "prompt": request.prompt, "negative_prompt": request.negative_prompt or "",
            "seed": call.seed, "subseed": -1, "subseed_strength": 0,
            "sampler_name": s.sampler, "steps": request.steps or s.steps,
            "cfg_scale": request.cfg if request.cfg is not None else s.cfg,
            "width": call.width, "height": call.height, "batch_size": call.count, "n_iter": 1,
            "send_images": True, "save_images": False, "force_task_id": task_id,
        }
        if s.scheduler:
            body["scheduler"] = s.scheduler
        if self.model:
            body["override_settings"] = {"sd_model_checkpoint": self.model}
            body["override_settings_restore_afterwards"] = True
        if call.init_image is None:
            return "txt2img", body
        body["init_images"] = [b64(call.init_image)]
        body["resize_mode"] = 1  # crop and resize: keeps the source's proportions
        body["denoising_strength"] = request.strength if request.strength is not None else s.denoising_strength
        if request.kind is JobKind.VARIATION and s.variation_seed_strength > 0:
            body["subseed"] = (call.seed + 1) % (MAX_SEED + 1)
            body["subseed_strength"] = s.variation_seed_strength
        return "img2img", body

    def _images(self, answer: Any, call: ProviderCall) -> list[GeneratedImage]:
        if not isinstance(answer, dict) or not isinstance(answer.get("images"), list):
            raise self.http.malformed("no images")
        try:
            info = json.loads(answer["info"]) if isinstance(answer.get("info"), str) else {}
            info = info if isinstance(info, dict) else {}
            first = int(info.get("index_of_first_image", 0))
            datas = [decode_base64(item) for item in answer["images"][first: first + call.count]]
        except (ValueError, TypeError) as exc:
            raise self.http.malformed("images or info undecodable") from exc
        seeds = info.get("all_seeds") or []
        facts = {"sampler": str(info.get("sampler_name", self.options.sampler)),
                 "steps": str(info.get("steps", "")), "cfg": str(info.get("cfg_scale", "")),
                 "checkpoint": str(info.get("sd_model_name") or self.model)}
        return [
            image_from(data, provider=self.name, model=self.model or facts["checkpoint"],
                       seed=int(seeds[i]) if i < len(seeds) else call.seed + i, info=facts)
            for i, data in enumerate(datas)
        ]

    async def _watch(self, url: str, task_id: str, progress: ProgressCallback) -> None:
        """Poll the progress endpoint while our call runs; report steps and new previews."""
        skip = "false" if self.options.live_previews else "true"
        last_image: str | None = None
        while True:
            await self.clock.sleep(self.options.progress_seconds)
            try:
                state = await self.http.json("GET", f"{url}{API}/progress", params={"skip_current_image": skip},
                                             read_timeout=10)
            except ProviderError as exc:
                log.debug("%s: progress poll failed: %s", self.name, exc.message)
                continue
            if not isinstance(state, dict):
                continue
            current = state.get("current_task")
            if current and current != task_id:
                await progress(ProgressUpdate(text="waiting: the server is busy with another job"))
                continue
            update = await self._update(state, last_image)
            if update is not None:
                last_image = state.get("current_image") or last_image
                await progress(update)

    async def _update(self, state: Mapping[str, Any], last_image: str | None) -> ProgressUpdate | None:
        job = state.get("state") if isinstance(state.get("state"), dict) else {}
        assert isinstance(job, dict)
        step, steps = job.get("sampling_step"), job.get("sampling_steps")
        if not job.get("job_count") and not state.get("progress"):
            return None  # not started yet
        fraction = min(0.99, float(state.get("progress") or 0.0))
        text = f"step {step}/{steps}" if steps else ""
        image = state.get("current_image")
        if isinstance(image, str) and image and image != last_image:
            try:
                data = decode_base64(image)
            except ValueError:
                data = b""
            with_preview = await preview(data, fraction=fraction, text=text, provider=self.name) if data else None
            if with_preview is not None:
                return with_preview
        return ProgressUpdate(fraction=fraction, text=text)

    async def _interrupt(self, url: str, task_id: str) -> None:
        """Stop the server's current job if it is ours (or the server does not say whose it is)."""
        with contextlib.suppress(ProviderError):
            state = await self.http.json("GET", f"{url}{API}/progress", params={"skip_current_image": "true"},
                                         read_timeout=5)
            current = state.get("current_task") if isinstance(state, dict) else None
            if current and current != task_id:
                log.info("%s: cancelled while queued behind another job; the WebUI cannot drop it", self.name)
                return
        await self.http.json("POST", f"{url}{API}/interrupt", read_timeout=5)

    async def _upscale(self, server: Server, call: ProviderCall) -> list[GeneratedImage]:
        assert call.init_image is not None
        s = self.options
        body = {"image": b64(call.init_image), "resize_mode": 0, "upscaling_resize": s.upscale_factor,
                "upscaler_1": s.upscaler, "upscaler_2": "None", "extras_upscaler_2_visibility": 0,
                "gfpgan_visibility": 0, "codeformer_visibility": 0, "upscale_first": False}
        answer = await self.http.json("POST", f"{server.url}{API}/extra-single-image", json_body=body)
        if not isinstance(answer, dict) or not isinstance(answer.get("image"), str):
            raise self.http.malformed("no image")
        try:
            data = decode_base64(answer["image"])
        except ValueError as exc:
            raise self.http.malformed("image undecodable") from exc
        return [image_from(data, provider=self.name, model=s.upscaler, seed=None, info={"upscaler": s.upscaler})]

    # --- discovery, for autocomplete --------------------------------------------------------
    async def models(self) -> list[str]:
        """Checkpoint titles the servers offer (what ``model`` takes)."""
        found = await self.pool.run(lambda server: self.http.json("GET", f"{server.url}{API}/sd-models"))
        return [str(m["title"]) for m in found or [] if isinstance(m, dict) and "title" in m]

    async def samplers(self) -> list[str]:
        """Sampler names the servers offer (what ``sampler`` takes)."""
        found = await self.pool.run(lambda server: self.http.json("GET", f"{server.url}{API}/samplers"))
        return [str(m["name"]) for m in found or [] if isinstance(m, dict) and "name" in m]

    # --- health and errors --------------------------------------------------------------------
    async def health(self) -> Health:
        return await self.pool.health()

    async def _probe(self, url: str) -> Health:
        try:
            await self.http.json("GET", f"{url}{API}/progress", params={"skip_current_image": "true"},
                                 read_timeout=10)
        except Unreachable as exc:
            return Health(ok=False, detail=f"{exc.message}: is the WebUI running, and is the address right?")
        except ApiMissing:
            return Health(ok=False, detail=await self._without_api(url))
        except ProviderError as exc:
            return Health(ok=False, detail=exc.message if url in exc.message else f"{url}: {exc.message}")
        return Health(ok=True, detail=f"{url}: ok" + (f", model {self.model}" if self.model else ""))

    async def _without_api(self, url: str) -> str:
        try:
            await self.http.read("GET", f"{url}/", read_timeout=10)
        except ProviderError:
            return f"{url} answers, but it is not an AUTOMATIC1111/Forge WebUI (no {API}): check the address"
        return f"{url} answers but {API} is missing: start the WebUI with --api"

    def _error(self, url: str, status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        text = redact(error_text(body), self.http.secret)
        origin = url.split(API)[0]
        if status == 404 and not (isinstance(body, dict) and "error" in body):  # the WebUI's own 404s have "error"
            return ApiMissing(f"{origin} answers but {API} is missing: start the WebUI with --api",
                              provider=self.name)
        if status == 401:
            return ProviderQuota(f'{origin} wants a login (--api-auth): set api_auth = "user:pass"',
                                 provider=self.name)
        if status == 422:
            return ProviderBadRequest(f"the WebUI rejected the parameters: {text}", provider=self.name)
        return classify(self.name, status, text or f"HTTP {status}", secret=self.http.secret,
                        retry_after=retry_after(headers, self.clock.now()))

    async def aclose(self) -> None:
        await self.http.aclose()
