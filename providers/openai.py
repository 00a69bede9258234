"""OpenAI's GPT image models through the openai SDK's ``AsyncOpenAI`` (``type = "openai"``).

Generations send ``n``, a size picked from ``--ar`` among the model's sizes, quality,
background (transparent when the prompt asks for an icon, avatar, logo ... and the format
allows it), output format and compression. With ``partial_images`` > 0 the answer streams:
each partial image becomes a live preview on the job card. Variations and image-to-image go
to the edits endpoint (multipart ``image``, plus a ``mask`` made from the source's transparent
pixels when it has any). Token usage is priced from ``[providers.NAME.prices]``. ``moderate``
screens a prompt with the (free) moderation endpoint, for servers whose ``moderation`` setting
is "provider".
"""

from __future__ import annotations

import asyncio
import io
import logging
import math
import re
from typing import Any, ClassVar, Literal

from openai import AsyncStream
from PIL import Image
from pydantic import Field

from bot import images
from bot.clock import Clock
from bot.errors import BadImage
from bot.generation import (
    Capabilities,
    GeneratedImage,
    Health,
    ModerationResult,
    ProgressCallback,
    ProgressUpdate,
    ProviderCall,
)
from bot.request import AspectRatio
from providers.base import ProviderSettings
from providers.cloud import CloudProvider, CloudSettings, decode_base64
from providers.openai_errors import SDK_ERRORS, make_client, translate
from providers.pricing import TokenUsage

log = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z]+")
#: The model ``moderate`` asks: OpenAI's current one, free of charge.
MODERATION_MODEL = "omni-moderation-latest"


class OpenAISettings(CloudSettings):
    """``[providers.NAME]`` keys for ``type = "openai"``; see config.example.toml."""

    #: Sizes the model renders; ``--ar`` picks the nearest.
    sizes: list[str] = Field(default_factory=lambda: ["1024x1024", "1536x1024", "1024x1536"], min_length=1)
    #: Models that take any WxH (sides multiples of 16, at most 3:1): render about this many pixels.
    free_size_pixels: int | None = Field(default=None, ge=256 * 256, le=3840 * 2160)
    max_images_per_call: int = Field(default=10, ge=1, le=10)
    background: Literal["auto", "opaque", "transparent"] = "auto"
    #: Words in a prompt that ask for a transparent background ("auto" background only).
    transparent_for: list[str] = Field(default_factory=lambda: ["icon", "avatar", "logo", "sticker", "emoji"])
    output_format: Literal["png", "jpeg", "webp"] = "png"
    output_compression: int | None = Field(default=None, ge=0, le=100)
    moderation: Literal["auto", "low"] | None = None
    #: Partial images streamed as live previews (0 turns streaming off).
    partial_images: int = Field(default=2, ge=0, le=3)
    #: Variations and image-to-image through the edits endpoint.
    image_input: bool = True
    #: Send ``input_fidelity`` (from --strength) with edits; not every model takes it.
    input_fidelity: bool = False


class OpenAIProvider(CloudProvider):
    """GPT image generations and edits, streamed as previews when ``partial_images`` > 0."""

    type_name: ClassVar[str] = "openai"
    Settings: ClassVar[type[ProviderSettings]] = OpenAISettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, OpenAISettings)
        self.options = settings
        super().__init__(name, settings, clock=clock)
        self._sizes = [_parse_size(s) for s in settings.sizes]
        self._client = make_client(api_key=self.secret, base_url=settings.base_url, timeout=settings.timeout_seconds)

    def declare_capabilities(self) -> Capabilities:
        s = self.options
        return Capabilities(
            aspect_ratios=None,  # any ratio: the nearest size the model offers
            max_images_per_call=s.max_images_per_call,
            fold_negative_prompt=s.negative_prompt == "fold",
            image_input=s.image_input,
            variation=s.image_input,
            live_previews=s.partial_images > 0,
            quality=True,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        if self.options.free_size_pixels is not None:
            clamped = max(1 / 3, min(3.0, ratio.value))
            height = math.sqrt(self.options.free_size_pixels / clamped)
            return max(16, round(height * clamped / 16) * 16), max(16, round(height / 16) * 16)
        return min(self._sizes, key=lambda size: abs(math.log(size[0] / size[1]) - math.log(ratio.value)))

    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        args = self._arguments(call)
        try:
            if call.init_image is not None:
                edit = await self._edit_arguments(call, call.init_image)
                answer: Any = await self._client.images.edit(**args, **edit)
            else:
                answer = await self._client.images.generate(**args)
            if isinstance(answer, AsyncStream):
                datas, usage = await self._read_stream(answer, call, progress)
            else:
                datas, usage = self._read_answer(answer)
        except SDK_ERRORS as exc:
            raise translate(exc, provider=self.name, secret=self.secret, clock=self.clock) from exc
        if not datas:
            raise self._malformed("no images")
        cost = self._cost_each(call, usage, len(datas))
        return [self._image(data, call, cost_usd=cost, revised_prompt=revised) for data, revised in datas]

    def _arguments(self, call: ProviderCall) -> dict[str, Any]:
        s = self.options
        args: dict[str, Any] = {
            "model": self.model, "prompt": call.request.prompt, "n": call.count,
            "size": f"{call.width}x{call.height}",
        }
        if call.request.quality is not None:
            args["quality"] = call.request.quality.value
        background = self._background(call.request.prompt)
        optional = {
            "background": background, "moderation": s.moderation, "output_compression": s.output_compression,
            "output_format": s.output_format if s.output_format != "png" else None,
        }
        args.update({k: v for k, v in optional.items() if v is not None})
        if s.partial_images:
            args.update(stream=True, partial_images=s.partial_images)
        return args

    async def _edit_arguments(self, call: ProviderCall, source: bytes) -> dict[str, Any]:
        extra: dict[str, Any] = {"image": ("source.png", source, "image/png")}
        mask = await asyncio.to_thread(_mask_from_alpha, source)
        if mask is not None:
            extra["mask"] = ("mask.png", mask, "image/png")
        if self.options.input_fidelity:
            strength = call.request.strength if call.request.strength is not None else 0.35
            extra["input_fidelity"] = "high" if strength < 0.5 else "low"
        return extra

    def _background(self, prompt: str) -> str | None:
        s = self.options
        if s.background != "auto":
            return s.background
        words = {w.removesuffix("s") for w in _WORD.findall(prompt.lower())}
        if s.output_format != "jpeg" and words & {w.lower() for w in s.transparent_for}:
            return "transparent"
        return None

    def _read_answer(self, answer: Any) -> tuple[list[tuple[bytes, str | None]], TokenUsage | None]:
        datas = []
        for item in answer.data or []:
            if not item.b64_json:
                raise self._malformed("an image without b64_json")
            datas.append((decode_base64(item.b64_json), item.revised_prompt))
        return datas, _usage(answer.usage)

    async def _read_stream(
        self, stream: AsyncStream[Any], call: ProviderCall, progress: ProgressCallback
    ) -> tuple[list[tuple[bytes, str | None]], TokenUsage | None]:
        datas: list[tuple[bytes, str | None]] = []
        usages: list[TokenUsage] = []
        frames = self.options.partial_images + 1
        async with stream:
            async for event in stream:
                if event.type.endswith(".partial_image"):
                    done = len(datas) * frames + event.partial_image_index + 1
                    await self._preview(event.b64_json, done / (call.count * frames), progress)
                elif event.type.endswith(".completed"):
                    datas.append((decode_base64(event.b64_json), None))
                    usages.extend(u for u in [_usage(event.usage)] if u is not None)
        return datas, sum(usages[1:], usages[0]) if usages else None

    async def _preview(self, b64: str, fraction: float, progress: ProgressCallback) -> None:
        try:
            preview = await asyncio.to_thread(images.thumbnail, decode_base64(b64))
        except (BadImage, ValueError):
            log.warning("%s: skipped an unreadable partial image", self.name)
            return
        await progress(ProgressUpdate(fraction=min(fraction, 0.99), text="preview", preview=preview))

    async def moderate(self, text: str) -> ModerationResult:
        """The moderation endpoint's verdict on ``text``: flagged, and the categories that fired."""
        try:
            answer = await self._client.moderations.create(model=MODERATION_MODEL, input=text)
        except SDK_ERRORS as exc:
            raise translate(exc, provider=self.name, secret=self.secret, clock=self.clock) from exc
        if not answer.results:
            raise self._malformed("no moderation result")
        result = answer.results[0]
        fired = tuple(name for name, hit in result.categories.model_dump(by_alias=True).items() if hit)
        return ModerationResult(flagged=result.flagged, categories=fired)

    async def health(self) -> Health:
        """The circuit, then whether the model exists (a free call)."""
        if not (circuit := await super().health()).ok:
            return circuit
        try:
            await self._client.models.retrieve(self.model)
        except SDK_ERRORS as exc:
            error = translate(exc, provider=self.name, secret=self.secret, clock=self.clock)
            return Health(ok=False, detail=error.message)
        return Health(ok=True, detail=f"model {self.model}")

    async def aclose(self) -> None:
        await self._client.close()


def _parse_size(text: str) -> tuple[int, int]:
    width, sep, height = text.partition("x")
    if not (sep and width.isdigit() and height.isdigit()):
        raise ValueError(f"size '{text}' is not WIDTHxHEIGHT")
    return int(width), int(height)


def _usage(usage: Any) -> TokenUsage | None:
    """Token counts from an ``ImagesResponse.usage`` (or a completed event's)."""
    if usage is None:
        return None
    details_in = getattr(usage, "input_tokens_details", None)
    details_out = getattr(usage, "output_tokens_details", None)
    text_in = _field(details_in, "text_tokens", usage.input_tokens)
    image_out = _field(details_out, "image_tokens", usage.output_tokens)
    return TokenUsage(
        input_text=text_in, input_image=_field(details_in, "image_tokens", 0),
        output_text=_field(details_out, "text_tokens", 0), output_image=image_out,
    )


def _field(details: Any, name: str, default: int) -> int:
    if details is None:
        return default
    value = details.get(name) if isinstance(details, dict) else getattr(details, name, None)
    return int(value) if value is not None else default


def _mask_from_alpha(source: bytes) -> bytes | None:
    """A mask from the source's fully transparent pixels (the parts to redraw), or None."""
    try:
        im = images.decode(source)
    except BadImage:
        return None
    if im.mode != "RGBA":
        return None
    alpha = im.getchannel("A")
    if alpha.getextrema()[0] != 0:
        return None
    mask = Image.new("RGBA", alpha.size, (255, 255, 255, 255))
    mask.putalpha(alpha.point(lambda a: 0 if a == 0 else 255))
    out = io.BytesIO()
    mask.save(out, "PNG")
    return out.getvalue()
