"""Google's Gemini image models through google-genai's ``generate_content`` (``type = "gemini"``).

One call asks for text and image output with ``image_config`` (aspect ratio, image size) and
gets one image back; the runner splits larger counts. Variations and image-to-image send the
source image as an inline part beside the prompt. Not Imagen: it is retired, and
``generate_images`` no longer works with an API key in current SDKs.

Gemini reports safety refusals with HTTP 200: a ``promptFeedback.blockReason``, a candidate
``finishReason`` such as IMAGE_SAFETY, or a reply in words with no image. Each is a refusal
whose reason is shown to the user. Gemini has no partial images, so there are no previews.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import aiohttp
from google import genai
from google.genai import errors as genai_errors
from google.genai import types
from pydantic import Field

from bot.clock import Clock
from bot.errors import ProviderError, ProviderRefused
from bot.generation import Capabilities, GeneratedImage, ProgressCallback, ProviderCall
from bot.request import AspectRatio
from providers.base import ProviderSettings
from providers.cloud import CloudProvider, CloudSettings
from providers.http_errors import classify, duration_seconds
from providers.pricing import TokenUsage

log = logging.getLogger(__name__)

RATIOS = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
#: Finish reasons that mean the model would not draw this (the rest mean it failed to).
REFUSED_FINISH = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION",
})
_SIDE = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}


class GeminiSettings(CloudSettings):
    """``[providers.NAME]`` keys for ``type = "gemini"``; see config.example.toml."""

    #: API version in the path; pinned, since SDK releases changed the default.
    api_version: str = "v1beta"
    aspect_ratios: list[str] = Field(default_factory=lambda: list(RATIOS), min_length=1)
    #: "1K", "2K", "4K" (some models also "512"); unset: the model's default.
    image_size: str | None = Field(default=None, pattern=r"^(512|1K|2K|4K)$")
    #: Variations and image-to-image (the source image sent with the prompt).
    image_input: bool = True


class GeminiProvider(CloudProvider):
    """Gemini image output: one image per call, safety signals read from a 200 answer."""

    type_name: ClassVar[str] = "gemini"
    Settings: ClassVar[type[ProviderSettings]] = GeminiSettings

    def __init__(self, name: str, settings: ProviderSettings, *, clock: Clock | None = None) -> None:
        assert isinstance(settings, GeminiSettings)
        self.options = settings
        self._ratios = frozenset(str(AspectRatio.parse(r)) for r in settings.aspect_ratios)
        super().__init__(name, settings, clock=clock)
        http = types.HttpOptions(
            base_url=settings.base_url, api_version=settings.api_version,
            timeout=int(settings.timeout_seconds * 1000),
        )
        self._client = genai.Client(api_key=self.secret, http_options=http)

    def declare_capabilities(self) -> Capabilities:
        s = self.options
        return Capabilities(
            aspect_ratios=self._ratios,
            max_images_per_call=1,
            fold_negative_prompt=s.negative_prompt == "fold",
            image_input=s.image_input,
            variation=s.image_input,
        )

    def size_for(self, ratio: AspectRatio) -> tuple[int, int]:
        side = _SIDE[self.options.image_size or "1K"]
        return ratio.size_for(side * side, multiple=16)

    async def _call(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        parts: list[Any] = [types.Part.from_text(text=call.request.prompt)]
        if call.init_image is not None:
            parts.append(types.Part.from_bytes(data=call.init_image, mime_type="image/png"))
        config = types.GenerateContentConfig(
            response_modalities=["TEXT", "IMAGE"],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
            image_config=types.ImageConfig(
                aspect_ratio=str(call.request.aspect_ratio), image_size=self.options.image_size
            ),
        )
        try:
            answer = await self._client.aio.models.generate_content(
                model=self.model, contents=[types.Content(role="user", parts=parts)], config=config
            )
        except genai_errors.APIError as exc:
            raise self._translate(exc) from exc
        except TimeoutError:
            raise  # the SDK's own timeout (aiohttp's is also a ClientError): a timeout, not a refused connection
        except (aiohttp.ClientError, OSError) as exc:
            raise self._unavailable() from exc
        except ValueError as exc:  # an answer that is not the JSON it should be
            raise self._malformed("not a GenerateContentResponse") from exc
        return self._read(answer, call)

    def _read(self, answer: types.GenerateContentResponse, call: ProviderCall) -> list[GeneratedImage]:
        feedback = answer.prompt_feedback
        if feedback is not None and feedback.block_reason is not None:
            raise self._refused(f"the prompt was blocked ({_name(feedback.block_reason)})")
        candidate = answer.candidates[0] if answer.candidates else None
        parts = candidate.content.parts if candidate and candidate.content and candidate.content.parts else []
        datas = [p.inline_data.data for p in parts if p.inline_data is not None and p.inline_data.data]
        words = " ".join(p.text for p in parts if p.text).strip()
        finish = _name(candidate.finish_reason) if candidate and candidate.finish_reason else ""
        if not datas:
            if finish in REFUSED_FINISH:
                raise self._refused(f"the image was blocked ({finish})")
            if words:  # the model answered in words only: a refusal or a question, shown as it is
                raise self._refused(words)
            raise self._malformed(f"no image (finish reason {finish or 'none'})")
        meta = answer.usage_metadata
        usage = None
        if meta is not None:
            usage = TokenUsage(input_text=meta.prompt_token_count or 0, output_image=meta.candidates_token_count or 0)
        cost = self._cost_each(call, usage, len(datas))
        info = {"text": words[:500]} if words else {}
        return [self._image(data, call, cost_usd=cost, info=info) for data in datas]

    def _translate(self, exc: genai_errors.APIError) -> ProviderError:
        details = exc.details if isinstance(exc.details, dict) else {}
        entries = (details.get("error") or {}).get("details") or []
        wait = None
        reasons = set()
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict):
                wait = wait or duration_seconds(str(entry.get("retryDelay", "")))
                reasons.add(str(entry.get("reason", "")))
        status = 401 if "API_KEY_INVALID" in reasons else int(exc.code or 0)
        return classify(self.name, status, exc.message or str(exc.status or ""), code=exc.status,
                        retry_after=wait, secret=self.secret)

    def _refused(self, reason: str) -> ProviderRefused:
        return ProviderRefused(reason, provider=self.name, reason=reason[:300])

    def _unavailable(self) -> ProviderError:
        return classify(self.name, 0, "could not connect", secret=self.secret)

    async def aclose(self) -> None:
        await self._client.aio.aclose()


def _name(value: Any) -> str:
    """An SDK enum (or a plain string, for values newer than the SDK) as its name."""
    return str(getattr(value, "value", value))
