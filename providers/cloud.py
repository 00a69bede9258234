"""What the paid HTTP image APIs (OpenAI, Gemini, xAI, OpenRouter) share.

A :class:`CloudProvider` checks a call against its declared capabilities before any network
call, fails fast while its circuit breaker is open, bounds the call by ``timeout_seconds``, and
prices what it made from the ``prices`` table in config. Subclasses implement ``_call``: turn
a :class:`~bot.generation.ProviderCall` into one request with their SDK and translate the SDK's
exceptions with :func:`providers.http_errors.classify`.

Model ids are config, not code: ``model`` is required, and what a model can do beyond the
provider's defaults (sizes, ratios, images per call) is set in the same section.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from typing import ClassVar, Literal

from pydantic import Field, SecretStr

from bot import images
from bot.clock import Clock
from bot.errors import (
    BadImage,
    ProviderBadRequest,
    ProviderError,
    ProviderQuota,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.generation import GeneratedImage, Health, ProgressCallback, ProviderCall
from bot.request import JobKind
from providers.base import BaseProvider, ProviderSettings
from providers.circuit import CircuitBreaker
from providers.pricing import Prices, TokenUsage

log = logging.getLogger(__name__)


class CloudSettings(ProviderSettings):
    """Keys every cloud provider section has, on top of the common ones."""

    api_key: SecretStr
    model: str = Field(min_length=1)
    prices: Prices = Prices()
    #: When the model takes no negative prompt: "fold" it into the prompt ("avoid: ..."), or "refuse".
    negative_prompt: Literal["fold", "refuse"] = "fold"
    #: Consecutive unavailable failures that open the circuit, and seconds it stays open.
    circuit_failures: int = Field(default=5, ge=1)
    circuit_cooldown_seconds: float = Field(default=60.0, ge=0)


class CloudProvider(BaseProvider):
    """Capability checks, circuit breaker, timeout and pricing around one SDK call (``_call``)."""

    Settings: ClassVar[type[ProviderSettings]] = CloudSettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        if not isinstance(settings, self.Settings) or not isinstance(settings, CloudSettings):
            raise TypeError(f"{type(self).__name__} needs {self.Settings.__name__}")
        self.cloud: CloudSettings = settings
        super().__init__(name, settings, clock=clock)
        self.circuit = CircuitBreaker(
            threshold=settings.circuit_failures, cooldown=settings.circuit_cooldown_seconds, clock=self.clock
        )

    @property
    def secret(self) -> str:
        """The API key, for the SDK client and for redacting messages; never log it."""
        return self.cloud.api_key.get_secret_value()

    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        """Check the call, then make ``call.count`` images with one request (``_call``)."""
        self._check(call)
        self.circuit.check(self.name)
        try:
            async with asyncio.timeout(self.settings.timeout_seconds):
                made = await self._call(call, progress)
        except TimeoutError as exc:
            self.circuit.failed()
            raise ProviderTimeout("no answer in time", provider=self.name) from exc
        except (ProviderUnavailable, ProviderQuota):
            self.circuit.failed()
            raise
        except ProviderError:
            self.circuit.succeeded()  # it answered: refusals and bad requests say nothing about its health
            raise
        self.circuit.succeeded()
        return made

    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        raise NotImplementedError

    def _check(self, call: ProviderCall) -> None:
        """Refuse, before any network call, what the declared capabilities do not cover."""
        caps, request = self.capabilities, call.request
        problem = None
        if call.count > caps.max_images_per_call:
            problem = f"at most {caps.max_images_per_call} images per call"
        elif request.negative_prompt and not caps.negative_prompt:
            problem = "no negative prompt with this model"
        elif not caps.supports_ratio(request.aspect_ratio):
            problem = f"no aspect ratio {request.aspect_ratio} with this model"
        elif request.kind is JobKind.UPSCALE:
            problem = "no upscaling"
        elif call.init_image is not None and not caps.image_input:
            problem = "no image input with this model"
        elif request.kind is JobKind.VARIATION and call.init_image is None:
            problem = "a variation needs its source image"
        if problem:
            raise ProviderBadRequest(problem, provider=self.name)

    async def health(self) -> Health:
        """What can be known without a paid call: whether the circuit is open."""
        if self.circuit.state == "open":
            return Health(ok=False, detail="circuit open after repeated failures")
        return Health(ok=True, detail=f"model {self.model}")

    def estimate_cost(self, call: ProviderCall) -> float:
        square = call.width == call.height
        quality = call.request.quality.value if call.request.quality else None
        return call.count * self.cloud.prices.per_image_usd(quality, square=square)

    def _image(
        self,
        data: bytes,
        call: ProviderCall,
        *,
        cost_usd: float,
        revised_prompt: str | None = None,
        info: dict[str, str] | None = None,
    ) -> GeneratedImage:
        """A ``GeneratedImage`` from the bytes a provider sent; an unreadable image counts as a bad answer."""
        try:
            found = images.image_info(data)
        except BadImage as exc:
            raise ProviderUnavailable("the provider sent an unreadable image", provider=self.name) from exc
        return GeneratedImage(
            data=data, mime=found.mime, width=found.width, height=found.height, seed=None,
            provider=self.name, model=self.model, revised_prompt=revised_prompt or None,
            cost_usd=cost_usd, info=info or {},
        )

    def _cost_each(self, call: ProviderCall, usage: TokenUsage | None, images_made: int) -> float:
        """Each image's share of what the call cost."""
        if images_made == 0:
            return 0.0
        quality = call.request.quality.value if call.request.quality else None
        total = self.cloud.prices.actual_usd(
            usage, images=images_made, quality=quality, square=call.width == call.height
        )
        return total / images_made

    def _malformed(self, what: str) -> ProviderUnavailable:
        log.warning("%s: malformed answer (%s)", self.name, what)
        return ProviderUnavailable(f"malformed answer from the provider ({what})", provider=self.name)


def decode_base64(text: str) -> bytes:
    """Image bytes from base64 or a ``data:image/...;base64,`` URL; ``ValueError`` if neither."""
    if text.startswith("data:"):
        header, _, text = text.partition(",")
        if ";base64" not in header:
            raise ValueError("not a base64 data URL")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("not base64") from exc
