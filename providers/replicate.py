"""Replicate predictions over aiohttp (``type = "replicate"``).

``model`` is an official model ("black-forest-labs/flux-schnell", created through
``/models/{owner}/{name}/predictions``) or a community model by version
("stability-ai/sdxl:39ed52f2...", created through ``/predictions`` with ``version``). What the
model takes is config, since inputs differ per model: how it is sized (``aspect_ratio`` or
``width``/``height``), and the names of its negative prompt, seed, steps, cfg, image and
strength inputs. Unset names are capabilities the model does not have.

A call creates the prediction with ``Prefer: wait=N`` (a bounded synchronous wait) and a
``Cancel-After`` deadline, then polls ``urls.get`` every ``poll_seconds`` (injected clock),
reading the percentage from the tqdm lines in ``logs``. Outputs are downloaded at once: their
URLs expire. The token goes to the API host only, never to the file host. A cancelled or
timed-out call cancels the prediction (``urls.cancel``). Cost: ``usd_per_second`` times the
reported ``predict_time`` when set, else the per-image price.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from bot import images
from bot.clock import Clock
from bot.errors import (
    BadImage,
    ProviderBadRequest,
    ProviderError,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.generation import Capabilities, GeneratedImage, Health, ProgressCallback, ProgressUpdate, ProviderCall
from bot.request import AspectRatio
from providers.base import ProviderSettings
from providers.cloud import CloudProvider, CloudSettings, decode_base64
from providers.http_client import HttpClient, error_text, normalise_base_url, origin_of
from providers.http_errors import classify, redact, retry_after
from providers.selfhosted import b64, image_from, on_cancel

log = logging.getLogger(__name__)
DEFAULT_BASE_URL = "https://api.replicate.com/v1"
FLUX_RATIOS = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
TERMINAL = frozenset({"succeeded", "failed", "canceled", "aborted"})
_TQDM = re.compile(r"^\s*(\d+)%\s*\|.*?\|\s*(\d+)/(\d+)", re.MULTILINE)
_RESETS_IN = re.compile(r"resets in ~?(\d+(?:\.\d+)?)\s*s", re.IGNORECASE)
_NSFW = re.compile(r"nsfw|safety|sensitive content|inappropriate", re.IGNORECASE)


class ReplicateSettings(CloudSettings):
    """``[providers.NAME]`` keys for ``type = "replicate"``; see config.example.toml."""

    base_url: str | None = DEFAULT_BASE_URL
    #: "aspect_ratio": the model takes a ratio label; "width_height": it takes pixel sizes.
    sizing: Literal["aspect_ratio", "width_height"] = "aspect_ratio"
    aspect_ratios: list[str] = Field(default_factory=lambda: list(FLUX_RATIOS), min_length=1)
    #: Edge of a 1:1 image with "width_height" sizing.
    size: int = Field(default=1024, ge=64, le=4096)
    max_images_per_call: int = Field(default=4, ge=1, le=10)
    #: Input names; unset means the model has no such input.
    count_input: str = "num_outputs"
    negative_prompt_input: str | None = None
    seed_input: str | None = "seed"
    steps_input: str | None = None
    cfg_input: str | None = None
    image_input: str | None = None
    strength_input: str | None = None
    #: Fixed inputs sent with every prediction (output_format, go_fast ...).
    input: dict[str, Any] = Field(default_factory=dict)
    #: USD per second of predict_time, for models billed by GPU time; the estimate assumes typical_seconds.
    usd_per_second: float | None = Field(default=None, gt=0)
    typical_seconds: float = Field(default=10.0, gt=0)
    #: Seconds the create request may wait for the result (Prefer: wait=N, 1-60) before polling.
    wait_seconds: int = Field(default=30, ge=1, le=60)
    poll_seconds: float = Field(default=1.0, gt=0)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str:
        return normalise_base_url(value or DEFAULT_BASE_URL)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+(:[0-9a-f]{64})?", value):
            raise ValueError('model is "owner/name" or "owner/name:<64-hex version>"')
        return value


class ReplicateProvider(CloudProvider):
    """Replicate predictions: sync wait, then polling; see the module docstring."""

    type_name: ClassVar[str] = "replicate"
    Settings: ClassVar[type[ProviderSettings]] = ReplicateSettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, ReplicateSettings)
        self.options = settings
        self._labels = {str(AspectRatio.parse(label)): label for label in settings.aspect_ratios}
        super().__init__(name, settings, clock=clock)
        assert settings.base_url is not None
        self.base = settings.base_url
        self.http = HttpClient(name, clock=self.clock, secret=self.secret,
                               auth_headers={"Authorization": f"Bearer {self.secret}"},
                               read_timeout=settings.timeout_seconds, on_error=self._error)

    def declare_capabilities(self) -> Capabilities:
        s = self.options
        return Capabilities(
            aspect_ratios=frozenset(self._labels) if s.sizing == "aspect_ratio" else None,
            max_images_per_call=s.max_images_per_call,
            negative_prompt=s.negative_prompt_input is not None,
            fold_negative_prompt=s.negative_prompt_input is None and s.negative_prompt == "fold",
            seed=s.seed_input is not None, image_input=s.image_input is not None,
            variation=s.image_input is not None, steps=s.steps_input is not None, cfg=s.cfg_input is not None,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        return ratio.size_for(self.options.size ** 2, multiple=64 if self.options.sizing == "width_height" else 16)

    # --- one call --------------------------------------------------------------------------
    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        owner_name, _, version = self.model.partition(":")
        body: dict[str, Any] = {"input": self._input(call)}
        if version:
            url = f"{self.base}/predictions"
            body["version"] = version
        else:
            url = f"{self.base}/models/{owner_name}/predictions"
        headers = {"Prefer": f"wait={self.options.wait_seconds}",
                   "Cancel-After": f"{int(self.settings.timeout_seconds)}s"}
        prediction = await self.http.json("POST", url, json_body=body, headers=headers,
                                          read_timeout=self.options.wait_seconds + 5)
        prediction = self._checked(prediction)
        try:
            prediction = await self._until_done(prediction, progress)
        except (asyncio.CancelledError, ProviderTimeout):
            await on_cancel(lambda: self._cancel(prediction), provider=self.name, what="cancel the prediction")
            raise
        return await self._results(prediction, call)

    def _input(self, call: ProviderCall) -> dict[str, Any]:
        s, request = self.options, call.request
        values: dict[str, Any] = {**s.input, "prompt": request.prompt, s.count_input: call.count}
        if s.sizing == "aspect_ratio":
            values["aspect_ratio"] = self._labels[str(request.aspect_ratio)]
        else:
            values.update(width=call.width, height=call.height)
        optional = {
            s.negative_prompt_input: request.negative_prompt, s.seed_input: call.seed,
            s.steps_input: request.steps, s.cfg_input: request.cfg,
            s.image_input: self._data_url(call.init_image) if call.init_image is not None else None,
            s.strength_input: request.strength if call.init_image is not None else None,
        }
        values.update({name: value for name, value in optional.items() if name and value is not None})
        return values

    async def _until_done(self, prediction: dict[str, Any], progress: ProgressCallback) -> dict[str, Any]:
        shown = ""
        while prediction["status"] not in TERMINAL:
            update = _progress(prediction)
            if update.text != shown or update.fraction is not None:
                shown = update.text
                await progress(update)
            await self.clock.sleep(self.options.poll_seconds)
            prediction = self._checked(await self.http.json("GET", self._url(prediction, "get")))
        return prediction

    async def _results(self, prediction: Mapping[str, Any], call: ProviderCall) -> list[GeneratedImage]:
        status, error = prediction["status"], str(prediction.get("error") or "")
        if status == "failed":
            if _NSFW.search(error):
                raise ProviderRefused(error, provider=self.name, reason=error)
            raise ProviderBadRequest(f"the model failed: {redact(error, self.secret) or 'no reason given'}",
                                     provider=self.name)
        if status != "succeeded":
            raise ProviderUnavailable(f"the prediction was {status} at Replicate", provider=self.name)
        output = prediction.get("output")
        urls = [output] if isinstance(output, str) else [u for u in output or [] if isinstance(u, str)]
        if not urls:
            raise self._malformed("no output files")
        datas = [await self._download(u) for u in urls[: call.count]]
        seconds = float((prediction.get("metrics") or {}).get("predict_time") or 0.0)
        if self.options.usd_per_second is not None:
            each = seconds * self.options.usd_per_second / len(datas)
        else:
            each = self._cost_each(call, None, len(datas))
        seed = call.seed if self.options.seed_input else None
        return [image_from(data, provider=self.name, model=self.model, seed=None if seed is None else seed + i,
                           cost_usd=each, info={"prediction": str(prediction.get("id", "")),
                                                "predict_time": f"{seconds:g}"})
                for i, data in enumerate(datas)]

    async def _download(self, url: str) -> bytes:
        if url.startswith("data:"):
            try:
                return decode_base64(url)
            except ValueError as exc:
                raise self._malformed("an undecodable data URL") from exc
        # The file host is another host: no token goes there.
        return await self.http.read("GET", url, authenticated=origin_of(url) == origin_of(self.base))

    async def _cancel(self, prediction: Mapping[str, Any]) -> None:
        await self.http.json("POST", self._url(prediction, "cancel"), read_timeout=10)

    def _url(self, prediction: Mapping[str, Any], which: str) -> str:
        """``urls.get``/``urls.cancel`` when they point at our API host; built from the id otherwise."""
        given = (prediction.get("urls") or {}).get(which)
        if isinstance(given, str) and origin_of(given) == origin_of(self.base):
            return given
        suffix = "/cancel" if which == "cancel" else ""
        return f"{self.base}/predictions/{prediction['id']}{suffix}"

    def _data_url(self, data: bytes) -> str:
        try:
            mime = images.image_info(data).mime
        except BadImage as exc:
            raise ProviderBadRequest(f"the input image is unusable: {exc.message}", provider=self.name) from exc
        return f"data:{mime};base64,{b64(data)}"

    def _checked(self, prediction: Any) -> dict[str, Any]:
        if not isinstance(prediction, dict) or not prediction.get("id") or not prediction.get("status"):
            raise self._malformed("not a prediction")
        return prediction

    # --- estimates, health, errors ------------------------------------------------------------
    def estimate_cost(self, call: ProviderCall) -> float:
        if self.options.usd_per_second is not None and not self.options.prices.per_image:
            return self.options.usd_per_second * self.options.typical_seconds
        return super().estimate_cost(call)

    async def health(self) -> Health:
        """The circuit, then whether the model (and version) exists: a free call."""
        if not (circuit := await super().health()).ok:
            return circuit
        owner_name, _, version = self.model.partition(":")
        path = f"/models/{owner_name}" + (f"/versions/{version}" if version else "")
        try:
            await self.http.json("GET", f"{self.base}{path}", read_timeout=10)
        except ProviderError as exc:
            return Health(ok=False, detail=exc.message)
        return Health(ok=True, detail=f"model {self.model}")

    def _error(self, url: str, status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        text = redact(error_text(body), self.secret) or f"HTTP {status}"
        wait = retry_after(headers, self.clock.now())
        if status == 429:
            hinted = _RESETS_IN.search(text)
            wait = wait if wait is not None else (float(hinted.group(1)) if hinted else None)
            return ProviderRateLimited(f"rate limited: {text}", provider=self.name, retry_after=wait)
        if status == 404 and "/models/" in url:
            return ProviderBadRequest(f"Replicate has no model {self.model}: check model in the config",
                                      provider=self.name)
        return classify(self.name, status, text, retry_after=wait, secret=self.secret)

    async def aclose(self) -> None:
        await self.http.aclose()


def _progress(prediction: Mapping[str, Any]) -> ProgressUpdate:
    if prediction["status"] == "starting":
        return ProgressUpdate(text="starting the model (a cold start can take a while)")
    found = _TQDM.findall(str(prediction.get("logs") or ""))
    if not found:
        return ProgressUpdate(text="processing")
    percent, done, total = found[-1]
    return ProgressUpdate(fraction=min(0.99, int(percent) / 100), text=f"step {done}/{total}")
