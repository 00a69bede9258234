"""AI Horde (the crowdsourced Stable Diffusion cluster) over aiohttp (``type = "horde"``).

A call submits ``POST /v2/generate/async`` (the ``apikey`` header: a registered key, or the
anonymous "0000000000", which gets the lowest priority), then polls ``/v2/generate/check/{id}``
every ``poll_seconds`` (injected clock; the Horde caches status for a second) and reports the
queue position and the Horde's own wait estimate on the job card. When it is done,
``/v2/generate/status/{id}`` gives the images: download URLs (``r2``, fetched without the key)
or base64 WEBP. A cancelled or timed-out call, or one no worker can serve, is withdrawn with
``DELETE /v2/generate/status/{id}`` so it neither runs nor costs kudos.

The negative prompt travels in the prompt after " ### ", the Horde's convention (its filter and
its workers split the prompt there). Models, NSFW and the other request flags are config; NSFW
is asked for only when config allows it and the request comes from a channel that allows it.
Cost is $0; the kudos each image consumed are stored with it.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field, SecretStr, field_validator, model_validator

from bot import images
from bot.clock import Clock
from bot.errors import (
    BadImage,
    ProviderBadRequest,
    ProviderError,
    ProviderQuota,
    ProviderRateLimited,
    ProviderRefused,
    ProviderUnavailable,
)
from bot.generation import Capabilities, GeneratedImage, Health, ProgressCallback, ProgressUpdate, ProviderCall
from bot.request import AspectRatio
from providers.base import ProviderSettings
from providers.cloud import CloudProvider, CloudSettings, decode_base64
from providers.http_client import HttpClient, error_text, normalise_base_url
from providers.http_errors import classify, redact, retry_after
from providers.selfhosted import b64, image_from, on_cancel

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://aihorde.net/api"
ANONYMOUS = "0000000000"
NEGATIVE_SEPARATOR = " ### "
_QUOTA_RC = frozenset({"KudosUpfront", "SharedKeyInsufficientKudos", "InvalidAPIKey"})
_REFUSED_RC = frozenset({"CorruptPrompt", "Profanity"})
_TTL = re.compile(r"for (\d+) more seconds")


class HordeSettings(CloudSettings):
    """``[providers.NAME]`` keys for ``type = "horde"``; see config.example.toml."""

    api_key: SecretStr = SecretStr(ANONYMOUS)
    base_url: str | None = DEFAULT_BASE_URL
    #: Acceptable models, in order; empty: any model a worker offers.
    models: list[str] = Field(default_factory=lambda: ["stable_diffusion"])
    model: str = ""
    #: Ask for workers that may draw NSFW (only for requests from channels that allow it).
    nsfw: bool = False
    #: Have workers censor accidental NSFW in SFW requests.
    censor_nsfw: bool = True
    trusted_workers: bool = False
    slow_workers: bool = True
    #: Share the images with LAION (costs fewer kudos; always on for anonymous users).
    shared: bool = False
    #: Images as download links (True) or inline base64 WEBP (False).
    r2: bool = True
    replacement_filter: bool = True
    sampler: str = "k_euler_a"
    karras: bool = True
    steps: int = Field(default=30, ge=1, le=500)
    cfg: float = Field(default=7.5, ge=0, le=100)
    #: Edge in pixels of a 1:1 image; sides are multiples of 64. Large sizes need kudos up front.
    size: int = Field(default=512, ge=64, le=3072)
    max_images_per_call: int = Field(default=4, ge=1, le=20)
    denoising_strength: float = Field(default=0.6, ge=0.01, le=1)
    poll_seconds: float = Field(default=2.0, ge=1.0)
    timeout_seconds: float = Field(default=600.0, gt=0)
    #: Identifies this bot to the Horde: "name:version:contact".
    client_agent: str = Field(default="imaginebot:0.1:unknown", pattern=r"^[^:]+:[^:]+:.+$")

    @model_validator(mode="before")
    @classmethod
    def _model_from_models(cls, data: Any) -> Any:
        if isinstance(data, dict) and not data.get("model"):
            models = data.get("models", ["stable_diffusion"])
            data = {**data, "model": models[0] if isinstance(models, list) and models else "any model"}
        return data

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str:
        return normalise_base_url(value or DEFAULT_BASE_URL, strip=("/v2",))


class HordeProvider(CloudProvider):
    """AI Horde async generation with queue position and ETA; see the module docstring."""

    type_name: ClassVar[str] = "horde"
    Settings: ClassVar[type[ProviderSettings]] = HordeSettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, HordeSettings)
        self.options = settings
        super().__init__(name, settings, clock=clock)
        assert settings.base_url is not None
        self.base = f"{settings.base_url}/v2"
        self.anonymous = self.secret == ANONYMOUS
        self.http = HttpClient(name, clock=self.clock, secret=None if self.anonymous else self.secret,
                               auth_headers={"apikey": self.secret}, headers={"Client-Agent": settings.client_agent},
                               read_timeout=60, on_error=self._error)

    def declare_capabilities(self) -> Capabilities:
        return Capabilities(
            aspect_ratios=None, max_images_per_call=self.options.max_images_per_call, negative_prompt=True,
            seed=True, image_input=True, variation=True, steps=True, cfg=True,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        return ratio.size_for(self.options.size ** 2, multiple=64)

    # --- one call --------------------------------------------------------------------------
    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        body = await self._payload(call)
        answer = await self.http.json("POST", f"{self.base}/generate/async", json_body=body)
        if not isinstance(answer, dict) or not answer.get("id"):
            raise self._malformed("no request id")
        request_id = str(answer["id"])
        for warning in answer.get("warnings") or []:
            log.info("%s: the Horde warns: %s", self.name, (warning or {}).get("message", warning))
        try:
            await self._wait(request_id, call.count, progress)
            status = await self.http.json("GET", f"{self.base}/generate/status/{request_id}")
        except (asyncio.CancelledError, ProviderUnavailable):  # cancelled, timed out, or no worker can serve it
            # Withdrawn, so it neither runs for nobody nor costs kudos.
            await on_cancel(lambda: self._withdraw(request_id), provider=self.name, what="cancel the request")
            raise
        return await self._results(status, call)

    async def _payload(self, call: ProviderCall) -> dict[str, Any]:
        s, request = self.options, call.request
        prompt = request.prompt + (NEGATIVE_SEPARATOR + request.negative_prompt if request.negative_prompt else "")
        params: dict[str, Any] = {
            "sampler_name": s.sampler, "cfg_scale": round(request.cfg if request.cfg is not None else s.cfg, 2),
            "seed": str(call.seed), "width": call.width, "height": call.height,
            "steps": request.steps or s.steps, "n": call.count, "karras": s.karras,
        }
        # A channel's NSFW policy rides on the request when the core sets it; without it, config decides.
        nsfw = s.nsfw and bool(getattr(request, "nsfw_allowed", True))
        body: dict[str, Any] = {
            "prompt": prompt, "params": params, "nsfw": nsfw, "censor_nsfw": s.censor_nsfw and not nsfw,
            "trusted_workers": s.trusted_workers, "slow_workers": s.slow_workers, "models": s.models,
            "r2": s.r2, "shared": s.shared, "replacement_filter": s.replacement_filter,
        }
        if call.init_image is not None:
            params["denoising_strength"] = request.strength if request.strength is not None else s.denoising_strength
            body["source_image"] = b64(await asyncio.to_thread(self._webp, call.init_image))
            body["source_processing"] = "img2img"
        return body

    def _webp(self, data: bytes) -> bytes:
        try:
            picture = images.decode(data)
        except BadImage as exc:
            raise ProviderBadRequest(f"the input image is unusable: {exc.message}", provider=self.name) from exc
        out = io.BytesIO()
        picture.save(out, "WEBP", quality=95)
        return out.getvalue()

    async def _wait(self, request_id: str, count: int, progress: ProgressCallback) -> None:
        """Poll /check until done, reporting the queue position and the Horde's ETA."""
        while True:
            try:
                check = await self.http.json("GET", f"{self.base}/generate/check/{request_id}")
            except ProviderRateLimited as exc:
                await self.clock.sleep(max(self.options.poll_seconds, exc.retry_after or 0.0))
                continue
            if not isinstance(check, dict):
                raise self._malformed("not a status")
            if check.get("faulted"):
                raise ProviderUnavailable("the AI Horde could not complete the request", provider=self.name)
            if check.get("is_possible") is False:
                raise ProviderUnavailable("no AI Horde worker can take this request now (model, size or steps)",
                                          provider=self.name)
            if check.get("done"):
                return
            await progress(_update(check, count))
            await self.clock.sleep(self.options.poll_seconds)

    async def _results(self, status: Any, call: ProviderCall) -> list[GeneratedImage]:
        generations = status.get("generations") if isinstance(status, dict) else None
        if not isinstance(generations, list):
            raise self._malformed("no generations")
        kept = [g for g in generations if isinstance(g, dict) and not _censored(g)]
        if generations and not kept:
            reason = "the AI Horde's safety filter censored the image"
            raise ProviderRefused(reason, provider=self.name, reason=reason)
        kudos = float(status.get("kudos") or 0.0)
        made = []
        for index, generation in enumerate(kept[: call.count]):
            data = await self._image_bytes(str(generation.get("img") or ""))
            seed = str(generation.get("seed", ""))
            made.append(image_from(
                data, provider=self.name, model=str(generation.get("model") or self.model),
                seed=int(seed) if seed.isdigit() else call.seed + index,
                info={"kudos": f"{kudos / len(kept):g}", "worker": str(generation.get("worker_name", ""))},
            ))
        if not made:
            raise self._malformed("no images")
        return made

    async def _image_bytes(self, img: str) -> bytes:
        if img.startswith(("http://", "https://")):
            return await self.http.read("GET", img, authenticated=False)  # a file host: no key
        try:
            return decode_base64(img)
        except ValueError as exc:
            raise self._malformed("an undecodable image") from exc

    async def _withdraw(self, request_id: str) -> None:
        url = f"{self.base}/generate/status/{request_id}"
        try:
            await self.http.json("DELETE", url, read_timeout=5)
        except ProviderUnavailable:
            await self.http.json("DELETE", url, read_timeout=5)  # cancels have been lost before: once more

    # --- health and errors ---------------------------------------------------------------------
    async def health(self) -> Health:
        """The circuit, the Horde's heartbeat, and (with a key) whose key it is and its kudos."""
        if not (circuit := await super().health()).ok:
            return circuit
        try:
            await self.http.json("GET", f"{self.base}/status/heartbeat", read_timeout=10)
            if self.anonymous:
                return Health(ok=True, detail="anonymous (lowest priority): set api_key for kudos")
            user = await self.http.json("GET", f"{self.base}/find_user", read_timeout=10)
        except ProviderError as exc:
            return Health(ok=False, detail=exc.message)
        user = user if isinstance(user, dict) else {}
        return Health(ok=True, detail=f"user {user.get('username', '?')}, {float(user.get('kudos') or 0):g} kudos")

    def _error(self, url: str, status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        rc = str(body.get("rc") or "") if isinstance(body, dict) else ""
        text = redact(_text(body), self.http.secret) or f"HTTP {status}"
        wait = retry_after(headers, self.clock.now())
        if rc in _REFUSED_RC:
            return ProviderRefused(text, provider=self.name, reason=text)
        if rc in _QUOTA_RC or status == 401:
            what = "not enough kudos" if rc.startswith(("Kudos", "Shared")) else "the API key was not accepted"
            return ProviderQuota(f"{what}: {text}", provider=self.name)
        if rc == "TimeoutIP" or status == 429:
            ttl = _TTL.search(text)
            return ProviderRateLimited(f"rate limited: {text}", provider=self.name,
                                       retry_after=float(ttl.group(1)) if ttl else wait)
        if status == 404 and "/generate/" in url:
            return ProviderUnavailable("the request expired or was removed on the AI Horde", provider=self.name)
        return classify(self.name, status, text, retry_after=wait)

    async def aclose(self) -> None:
        await self.http.aclose()


def _update(check: Mapping[str, Any], count: int) -> ProgressUpdate:
    finished, processing = int(check.get("finished") or 0), int(check.get("processing") or 0)
    wait = check.get("wait_time")
    eta = float(wait) if isinstance(wait, int | float) and wait > 0 else None
    if processing or finished:
        text = f"a worker is drawing ({finished}/{count} done)"
        return ProgressUpdate(fraction=min(0.99, finished / max(1, count)) or None, text=text, eta_seconds=eta)
    position = check.get("queue_position")
    place = int(position) if isinstance(position, int) else None
    return ProgressUpdate(text="waiting in the AI Horde queue", queue_position=place, eta_seconds=eta)


def _censored(generation: Mapping[str, Any]) -> bool:
    if generation.get("censored"):
        return True
    return any(isinstance(m, dict) and m.get("type") == "censorship" for m in generation.get("gen_metadata") or [])


def _text(body: Any) -> str:
    """The Horde's message, with flask-restx's per-field validation errors when there are any."""
    text = error_text(body)
    if isinstance(body, dict) and isinstance(body.get("errors"), dict):
        fields = "; ".join(f"{k}: {v}" for k, v in list(body["errors"].items())[:3])
        text = f"{text} ({fields})" if text else fields
    return text
