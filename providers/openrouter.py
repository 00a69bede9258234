"""Image models behind OpenRouter, through chat completions with image output (``type = "openrouter"``).

The openai SDK posts to ``{base_url}/chat/completions`` with ``modalities: ["image", "text"]``
and an ``image_config`` (aspect ratio, image size); images come back as ``data:`` URLs in
``message.images``. A variation sends the source image as an ``image_url`` part. OpenRouter
refuses content with a 403, and once a model has started it reports errors inside a 200
answer (``{"error": {"code": ..., "message": ...}}``), so both are read.
"""

from __future__ import annotations

import base64
from typing import Any, ClassVar

from pydantic import Field

from bot.clock import Clock
from bot.errors import ProviderError, ProviderRefused
from bot.generation import Capabilities, GeneratedImage, ProgressCallback, ProviderCall
from bot.request import AspectRatio
from providers.base import ProviderSettings
from providers.cloud import CloudProvider, CloudSettings, decode_base64
from providers.http_errors import classify
from providers.openai_errors import SDK_ERRORS, error_fields, make_client, translate
from providers.pricing import TokenUsage

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]


class OpenRouterSettings(CloudSettings):
    """``[providers.NAME]`` keys for ``type = "openrouter"``; see config.example.toml."""

    aspect_ratios: list[str] = Field(default_factory=lambda: list(RATIOS), min_length=1)
    #: ``image_config.image_size`` ("1K", "2K", "4K") for models that take it; unset: the model's default.
    image_size: str | None = Field(default=None, pattern=r"^(512|1K|2K|4K)$")
    image_input: bool = True
    #: OpenRouter's optional attribution headers (``HTTP-Referer``, ``X-Title``).
    referer: str | None = None
    title: str | None = None


class OpenRouterProvider(CloudProvider):
    """One chat completion per image; errors read from the status and from the answer's body."""

    type_name: ClassVar[str] = "openrouter"
    Settings: ClassVar[type[ProviderSettings]] = OpenRouterSettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, OpenRouterSettings)
        self.options = settings
        self._ratios = frozenset(str(AspectRatio.parse(r)) for r in settings.aspect_ratios)
        super().__init__(name, settings, clock=clock)
        headers = {k: v for k, v in (("HTTP-Referer", settings.referer), ("X-Title", settings.title)) if v}
        self._client = make_client(
            api_key=self.secret, base_url=settings.base_url or DEFAULT_BASE_URL,
            timeout=settings.timeout_seconds, headers=headers or None,
        )

    def declare_capabilities(self) -> Capabilities:
        s = self.options
        return Capabilities(
            aspect_ratios=self._ratios, max_images_per_call=1, fold_negative_prompt=s.negative_prompt == "fold",
            image_input=s.image_input, variation=s.image_input,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        return ratio.size_for(1024 * 1024, multiple=16)

    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        content: list[dict[str, Any]] = [{"type": "text", "text": call.request.prompt}]
        if call.init_image is not None:
            url = "data:image/png;base64," + base64.b64encode(call.init_image).decode()
            content.append({"type": "image_url", "image_url": {"url": url}})
        image_config: dict[str, str] = {"aspect_ratio": str(call.request.aspect_ratio)}
        if self.options.image_size:
            image_config["image_size"] = self.options.image_size
        try:
            answer = await self._client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": content}],  # type: ignore[list-item,misc]
                extra_body={"modalities": ["image", "text"], "image_config": image_config},
            )
        except SDK_ERRORS as exc:
            raise self._translate(exc) from exc
        return self._read(answer, call)

    def _read(self, answer: Any, call: ProviderCall) -> list[GeneratedImage]:
        extra = answer.model_extra or {}
        if "error" in extra:  # the model started, then failed: HTTP 200 with an error body
            raise self._from_body(extra["error"])
        choices = getattr(answer, "choices", None) or []
        if not choices:
            raise self._malformed("no choices")
        message = choices[0].message
        urls = [_image_url(item) for item in (message.model_extra or {}).get("images") or []]
        try:
            datas = [decode_base64(url) for url in urls if url]
        except ValueError as exc:
            raise self._malformed("an image that is not a base64 data URL") from exc
        words = (message.content or "").strip()
        if not datas:
            if choices[0].finish_reason == "content_filter" or words:
                reason = words or "the content filter stopped it"
                raise ProviderRefused(reason, provider=self.name, reason=reason[:300])
            raise self._malformed("no image")
        usage = None
        if answer.usage is not None:
            usage = TokenUsage(input_text=answer.usage.prompt_tokens, output_image=answer.usage.completion_tokens)
        cost = self._cost_each(call, usage, len(datas))
        return [self._image(data, call, cost_usd=cost) for data in datas]

    def _translate(self, exc: Exception) -> ProviderError:
        status = getattr(exc, "status_code", None)
        if status == 403:  # OpenRouter's moderation
            return self._from_body(getattr(exc, "body", None), status=403)
        return translate(exc, provider=self.name, secret=self.secret, clock=self.clock)

    def _from_body(self, body: Any, *, status: int | None = None) -> ProviderError:
        message, _, _ = error_fields(body)
        inner = body.get("error", body) if isinstance(body, dict) else {}
        code = status or (inner.get("code") if isinstance(inner, dict) else None)
        status_code = code if isinstance(code, int) else 500
        if status_code == 403:
            reasons = ((inner.get("metadata") or {}).get("reasons") or []) if isinstance(inner, dict) else []
            reason = ", ".join(str(r) for r in reasons) or message or "flagged by moderation"
            return ProviderRefused(reason, provider=self.name, reason=reason[:300])
        return classify(self.name, status_code, message or "the model failed", secret=self.secret)

    async def aclose(self) -> None:
        await self._client.close()


def _image_url(item: Any) -> str:
    if isinstance(item, dict):
        url = (item.get("image_url") or {}).get("url")
        return str(url) if url else ""
    return ""
