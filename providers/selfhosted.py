"""What the GPU-backend providers (A1111, ComfyUI, Replicate, AI Horde) share.

* :func:`check_call` refuses, before any network call, what a provider's declared capabilities
  do not cover (the cloud providers have the same check in ``CloudProvider``).
* :func:`image_from` turns returned bytes into a ``GeneratedImage``; bytes that are not an image
  count as a bad answer from the provider.
* :func:`preview` shrinks a backend's live preview for the job card, off the event loop.
* :func:`on_cancel` runs a backend's "stop" request when a call is cancelled, shielded from the
  cancellation and bounded in time, and never hides the cancellation itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import Awaitable, Callable

from bot import images
from bot.errors import BadImage, ProviderBadRequest, ProviderError, ProviderUnavailable
from bot.generation import Capabilities, GeneratedImage, ProgressUpdate, ProviderCall
from bot.request import JobKind

log = logging.getLogger(__name__)

#: Upscales beyond this many output pixels are refused rather than sent to a GPU.
MAX_UPSCALE_PIXELS = 8192 * 8192
#: Seconds a "stop" request may take when a call is cancelled.
CANCEL_TIMEOUT = 10.0


def check_call(provider: str, caps: Capabilities, call: ProviderCall) -> None:
    """Raise ``ProviderBadRequest`` for what ``caps`` do not cover."""
    request = call.request
    problem = None
    if call.count > caps.max_images_per_call:
        problem = f"at most {caps.max_images_per_call} images per call"
    elif request.negative_prompt and not caps.negative_prompt:
        problem = "no negative prompt with this setup"
    elif request.kind is JobKind.UPSCALE and not caps.upscale:
        problem = "no upscaling with this setup"
    elif request.kind is not JobKind.UPSCALE and not caps.supports_ratio(request.aspect_ratio):
        problem = f"no aspect ratio {request.aspect_ratio} with this setup"
    elif call.init_image is not None and request.kind is not JobKind.UPSCALE and not caps.image_input:
        problem = "no image input with this setup"
    elif request.kind is not JobKind.GENERATE and call.init_image is None:
        problem = f"a {request.kind.value} needs its source image"
    if problem:
        raise ProviderBadRequest(problem, provider=provider)


def check_upscale_size(provider: str, source: bytes, factor: float) -> None:
    try:
        info = images.image_info(source)
    except BadImage as exc:
        raise ProviderBadRequest(f"the source image is unusable: {exc.message}", provider=provider) from exc
    if info.width * info.height * factor * factor > MAX_UPSCALE_PIXELS:
        raise ProviderBadRequest("the source image is too large to upscale", provider=provider)


def image_from(
    data: bytes,
    *,
    provider: str,
    model: str,
    seed: int | None,
    cost_usd: float = 0.0,
    info: dict[str, str] | None = None,
) -> GeneratedImage:
    """A ``GeneratedImage`` from returned bytes; ``ProviderUnavailable`` if they are not an image."""
    try:
        found = images.image_info(data)
    except BadImage as exc:
        raise ProviderUnavailable("the provider sent an unreadable image", provider=provider) from exc
    return GeneratedImage(
        data=data, mime=found.mime, width=found.width, height=found.height, seed=seed,
        provider=provider, model=model, cost_usd=cost_usd, info=info or {},
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


async def preview(data: bytes, *, fraction: float | None, text: str, provider: str) -> ProgressUpdate | None:
    """A progress update carrying a small preview of ``data``; None when it is not an image."""
    try:
        small = await asyncio.to_thread(images.thumbnail, data)
    except BadImage:
        log.warning("%s: skipped an unreadable preview", provider)
        return None
    return ProgressUpdate(fraction=fraction, text=text, preview=small)


async def on_cancel(stop: Callable[[], Awaitable[None]], *, provider: str, what: str) -> None:
    """Run ``stop`` (an interrupt or cancel request) shielded and bounded; log, never raise, its failure.

    Call it from an ``except asyncio.CancelledError`` block and re-raise afterwards: the
    cancellation must still reach the runner.
    """
    async def bounded() -> None:
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT):
                await stop()
        except (ProviderError, TimeoutError) as exc:
            message = exc.message if isinstance(exc, ProviderError) else "no answer in time"
            log.warning("%s: could not %s: %s", provider, what, message)

    task = asyncio.ensure_future(bounded())
    with contextlib.suppress(asyncio.CancelledError):  # cancelled again: the request still goes out
        await asyncio.shield(task)
