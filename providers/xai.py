"""xAI's Grok Imagine models through its OpenAI-compatible endpoint (``type = "xai"``).

The openai SDK talks to ``base_url`` (https://api.x.ai/v1 by default). xAI takes no ``size``:
the aspect ratio and resolution go in xAI's own fields (``extra_body``), images come back as
``b64_json`` (sometimes a whole ``data:`` URL, which is handled), and the cost of a call is
reported in ``usage.cost_in_usd_ticks``, priced with ``usd_per_cost_tick`` from config when set.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from bot.clock import Clock
from bot.errors import ProviderRefused
from bot.generation import Capabilities, GeneratedImage, ProgressCallback, ProviderCall
from bot.request import AspectRatio
from providers.base import ProviderSettings
from providers.cloud import CloudProvider, CloudSettings, decode_base64
from providers.openai_errors import SDK_ERRORS, make_client, translate

DEFAULT_BASE_URL = "https://api.x.ai/v1"
RATIOS = ["1:1", "3:4", "4:3", "9:16", "16:9", "2:3", "3:2", "9:20", "20:9", "1:2", "2:1"]


class XAISettings(CloudSettings):
    """``[providers.NAME]`` keys for ``type = "xai"``; see config.example.toml."""

    aspect_ratios: list[str] = Field(default_factory=lambda: list(RATIOS), min_length=1)
    resolution: Literal["1k", "2k"] = "1k"
    max_images_per_call: int = Field(default=10, ge=1, le=10)
    #: USD per tick of ``usage.cost_in_usd_ticks``; unset: the per-image price is the cost.
    usd_per_cost_tick: float | None = Field(default=None, gt=0)


class XAIProvider(CloudProvider):
    """Grok Imagine text-to-image; one request makes up to ``max_images_per_call`` images."""

    type_name: ClassVar[str] = "xai"
    Settings: ClassVar[type[ProviderSettings]] = XAISettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, XAISettings)
        self.options = settings
        self._ratios = frozenset(str(AspectRatio.parse(r)) for r in settings.aspect_ratios)
        super().__init__(name, settings, clock=clock)
        self._client = make_client(
            api_key=self.secret, base_url=settings.base_url or DEFAULT_BASE_URL, timeout=settings.timeout_seconds
        )

    def declare_capabilities(self) -> Capabilities:
        return Capabilities(
            aspect_ratios=self._ratios,
            max_images_per_call=self.options.max_images_per_call,
            fold_negative_prompt=self.options.negative_prompt == "fold",
            quality=True,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        side = 1024 if self.options.resolution == "1k" else 2048
        return ratio.size_for(side * side, multiple=16)

    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        extra: dict[str, Any] = {"aspect_ratio": str(call.request.aspect_ratio), "resolution": self.options.resolution}
        quality = call.request.quality.value if call.request.quality else None
        try:
            answer = await self._client.images.generate(
                model=self.model, prompt=call.request.prompt, n=call.count, response_format="b64_json",
                extra_body={**extra, **({"quality": quality} if quality else {})},
            )
            items = [(decode_base64(item.b64_json or ""), item.revised_prompt) for item in answer.data or []]
        except SDK_ERRORS as exc:
            raise translate(exc, provider=self.name, secret=self.secret, clock=self.clock) from exc
        extras = answer.model_extra or {}
        if not items and extras.get("block_reason"):
            reason = str(extras["block_reason"])
            raise ProviderRefused(reason, provider=self.name, reason=reason)
        if not items:
            raise self._malformed("no images")
        cost = self._cost_each(call, None, len(items))
        ticks = _ticks(answer.usage)
        if ticks is not None and self.options.usd_per_cost_tick is not None:
            cost = ticks * self.options.usd_per_cost_tick / len(items)
        return [self._image(data, call, cost_usd=cost, revised_prompt=revised) for data, revised in items]

    async def aclose(self) -> None:
        await self._client.close()


def _ticks(usage: Any) -> int | None:
    if usage is None:
        return None
    value = (getattr(usage, "model_extra", None) or {}).get("cost_in_usd_ticks")
    return int(value) if isinstance(value, int | float) else None
