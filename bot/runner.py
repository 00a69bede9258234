"""Running one job: provider calls with a timeout, the fallback chain, and storing the images.

The runner makes images and puts them in the blob store; it does not change the job's status.
The engine decides what an outcome means for the queue (finish, retry later, fail) and writes
it, so the lifecycle lives in one place.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from bot import images as imaging
from bot import messages
from bot.clock import Clock
from bot.config import QueueConfig, StyleConfig
from bot.errors import (
    NotFound,
    ProviderBadRequest,
    ProviderError,
    ProviderQuota,
    ProviderRefused,
    ProviderTimeout,
    UserFacingError,
)
from bot.generation import GeneratedImage, ProgressCallback, ProgressUpdate, Provider, ProviderCall
from bot.jobs import ImageRecord, Job
from bot.request import MAX_SEED, GenerationRequest, JobKind
from bot.styles import effective_prompt
from storage import faults
from storage.base import BlobStore, Storage

log = logging.getLogger(__name__)

#: PNGs below this size get their parameters spliced in on the event loop (microseconds of byte
#: copying); larger ones, or other formats that need re-encoding, go to a thread.
INLINE_EMBED_BYTES = 256 * 1024

StylesFor = Callable[[Job], Awaitable[Mapping[str, StyleConfig]]]


@dataclass(slots=True)
class Outcome:
    """What became of one attempt at a job."""

    images: list[ImageRecord] = field(default_factory=list)
    #: The stored PNG bytes of ``images``, in order, handed on so delivery need not read them back.
    datas: list[bytes] = field(default_factory=list)
    #: A user-facing reason when the attempt failed.
    error: str | None = None
    #: When set, the attempt failed in a way worth retrying after this many seconds.
    retry_in: float | None = None
    #: The provider that served the job when it was not the one asked for.
    served_by: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and bool(self.images)


class JobRunner:
    """Turns a job into stored images, trying the fallback chain when its provider is down."""

    def __init__(
        self,
        *,
        providers: Mapping[str, Provider],
        storage: Storage,
        blobs: BlobStore,
        clock: Clock,
        queue: QueueConfig,
        fallback: list[str],
        styles_for: StylesFor,
    ) -> None:
        self._providers = providers
        self._storage = storage
        self._blobs = blobs
        self._clock = clock
        self._queue = queue
        self._fallback = fallback
        self._styles_for = styles_for
        #: Observers (metrics): called with (provider name, error) for every failed provider call.
        self.on_provider_error: list[Callable[[str, ProviderError], None]] = []

    async def run(self, job: Job, progress: ProgressCallback) -> Outcome:
        """One attempt: the job's provider, then each fallback that can do the job."""
        try:
            init_image = await self._input_image(job.request)
            styles = await self._styles_for(job)
            effective_prompt(job.request, styles)  # a style deleted since submit fails here, kindly
        except UserFacingError as exc:
            return Outcome(error=exc.message)
        cache_key = _cache_key(job, self._providers[job.provider], styles, init_image)
        if cache_key is not None and (cached := await self._cached(job, cache_key)) is not None:
            return cached
        tried: list[str] = []
        last: ProviderError | None = None
        for name in self._chain(job):
            provider = self._providers[name]
            tried.append(name)
            try:
                made = await self._generate(provider, job, styles, init_image, progress)
            except ProviderRefused as exc:
                for hook in self.on_provider_error:
                    hook(name, exc)
                return Outcome(error=messages.provider_refused(name, exc.reason or exc.message))
            except ProviderBadRequest as exc:
                return Outcome(error=messages.provider_bad_request(name, exc.message))
            except ProviderError as exc:
                log.warning("job %s: %s failed: %s", job.id, name, exc.message)
                for hook in self.on_provider_error:
                    hook(name, exc)
                last = exc
                if not exc.falls_back:
                    break
                continue
            records, datas = await self._store(job, made)
            if cache_key is not None and name == job.provider:
                await self._remember_cache_key(job, cache_key)
            return Outcome(images=records, datas=datas, served_by=name if name != job.provider else None)
        return self._failure(job, last, tried)

    # --- choosing providers -------------------------------------------------------------------
    def _chain(self, job: Job) -> list[str]:
        chain = [job.provider]
        for name in self._fallback:
            if name not in chain and name in self._providers and can_serve(self._providers[name], job.request):
                chain.append(name)
        return chain

    def storage_failure(self, job: Job) -> Outcome:
        """The outcome of an attempt whose images could not be saved (a full or read-only disk)."""
        if job.attempts < self._queue.max_attempts:
            return Outcome(error=messages.IMAGES_NOT_SAVED, retry_in=self._backoff(job.attempts, None))
        return Outcome(error=messages.gave_up(job.attempts, messages.IMAGES_NOT_SAVED))

    async def _remember_cache_key(self, job: Job, cache_key: str) -> None:
        try:
            await self._storage.set_cache_key(job.id, cache_key)
        except Exception as exc:
            trouble = faults.storage_unavailable(exc)
            if trouble is None:
                raise
            # Only a shortcut for later identical jobs is lost; the images themselves are stored.
            log.warning("job %s: %s, so its cache key was not recorded", job.id, trouble.reason)

    def _failure(self, job: Job, last: ProviderError | None, tried: list[str]) -> Outcome:
        if last is None:
            return Outcome(error=messages.provider_down(job.provider, tried))
        if isinstance(last, ProviderQuota):
            return Outcome(error=messages.provider_quota(tried[-1]))
        if last.retryable and job.attempts < self._queue.max_attempts:
            return Outcome(error=last.message, retry_in=self._backoff(job.attempts, last.retry_after))
        if isinstance(last, ProviderTimeout):
            reason = messages.timed_out(self._queue.job_timeout_seconds)
        else:
            reason = messages.provider_down(job.provider, tried)
        if job.attempts > 1:
            reason = messages.gave_up(job.attempts, reason)
        return Outcome(error=reason)

    async def _cached(self, job: Job, key: str) -> Outcome | None:
        """The images of an earlier identical job, when its provider is deterministic for a seed."""
        source = await self._storage.find_cached(key)
        if source is None or source == job.id:
            return None
        records = await self._storage.job_images(source)
        try:
            datas = [await self._blobs.get(r.sha256) for r in records]
        except NotFound:
            return None
        now = self._clock.now()
        # Nothing was spent on this job: the copies cost $0, so usage counts the money once.
        copies = [dataclasses.replace(r, job_id=job.id, cost_usd=0.0, created_at=now) for r in records]
        return Outcome(images=copies, datas=datas) if copies else None

    def _backoff(self, attempts: int, retry_after: float | None) -> float:
        base: float = self._queue.retry_base_seconds * 2.0 ** max(0, attempts - 1)
        wait = max(base, retry_after or 0.0)
        return min(wait, self._queue.retry_max_seconds) * random.uniform(1.0, 1.25)

    # --- calling -----------------------------------------------------------------------------
    async def _generate(
        self,
        provider: Provider,
        job: Job,
        styles: Mapping[str, StyleConfig],
        init_image: bytes | None,
        progress: ProgressCallback,
    ) -> list[GeneratedImage]:
        request = job.request
        styled = effective_prompt(request, styles)
        prompt, negative = styled.prompt, styled.negative_prompt
        caps = provider.capabilities
        if negative and not caps.negative_prompt and caps.fold_negative_prompt:
            prompt, negative = f"{prompt}. Avoid: {negative}", None
            progress = _noting(progress, messages.negative_prompt_folded(provider.name))
            await progress(ProgressUpdate())
        call_request = request.model_copy(update={"prompt": prompt, "negative_prompt": negative})
        width, height = provider.size_for(request.aspect_ratio)
        seed = request.seed if request.seed is not None else _job_seed(job)
        count = 1 if request.kind is JobKind.UPSCALE else request.count
        per_call = max(1, provider.capabilities.max_images_per_call)
        made: list[GeneratedImage] = []
        try:
            async with asyncio.timeout(self._queue.job_timeout_seconds):
                while len(made) < count:
                    n = min(per_call, count - len(made))
                    call = ProviderCall(
                        request=call_request, count=n, seed=(seed + len(made)) % (MAX_SEED + 1),
                        width=width, height=height, init_image=init_image,
                    )
                    try:
                        made.extend((await provider.generate(call, progress))[:n])
                    except ProviderError as exc:
                        # Images already made were paid for: keep them rather than buy them again.
                        if not made or isinstance(exc, ProviderRefused):
                            raise
                        log.warning("job %s: keeping %d of %d images: %s", job.id, len(made), count, exc.message)
                        break
        except TimeoutError as exc:
            raise ProviderTimeout("the provider took too long", provider=provider.name) from exc
        if not made:
            raise ProviderBadRequest("the provider returned no images", provider=provider.name)
        return made

    async def _input_image(self, request: GenerationRequest) -> bytes | None:
        if request.kind is not JobKind.GENERATE:
            assert request.source_job_id is not None and request.source_image_index is not None
            records = await self._storage.job_images(request.source_job_id)
            match = [r for r in records if r.index == request.source_image_index]
            if not match:
                raise NotFound(messages.IMAGE_NOT_FOUND)
            return await self._blobs.get(match[0].sha256)
        if request.init_image is not None:
            return await self._blobs.get(request.init_image)
        return None

    async def _store(self, job: Job, made: list[GeneratedImage]) -> tuple[list[ImageRecord], list[bytes]]:
        records = []
        datas = []
        now = self._clock.now()
        for index, image in enumerate(made):
            params = _parameters(job, image)
            if image.mime == "image/png" and len(image.data) < INLINE_EMBED_BYTES:
                png = imaging.embed_parameters(image.data, params)  # splicing chunks: no Pillow work
            else:
                png = await asyncio.to_thread(_png_with_parameters, image, params)
            sha = await self._blobs.put(png)
            datas.append(png)
            records.append(ImageRecord(
                job_id=job.id, index=index, sha256=sha, width=image.width, height=image.height,
                size_bytes=len(png), mime="image/png", seed=image.seed, provider=image.provider,
                model=image.model, revised_prompt=image.revised_prompt, cost_usd=image.cost_usd,
                created_at=now,
            ))
        return records, datas


def can_serve(provider: Provider, request: GenerationRequest) -> bool:
    """Whether a provider's declared capabilities cover what the request needs."""
    caps = provider.capabilities
    if request.kind is JobKind.VARIATION and not (caps.variation or caps.image_input):
        return False
    if request.kind is JobKind.UPSCALE and not caps.upscale:
        return False
    if request.init_image is not None and not caps.image_input:
        return False
    if request.negative_prompt and not (caps.negative_prompt or caps.fold_negative_prompt):
        return False
    return caps.supports_ratio(request.aspect_ratio)


def _noting(progress: ProgressCallback, note: str) -> ProgressCallback:
    """``progress`` with ``note`` added to every update's text, so the card keeps saying it."""

    async def noted(update: ProgressUpdate) -> None:
        await progress(dataclasses.replace(update, text=f"{update.text} · {note}" if update.text else note))

    return noted


def _cache_key(
    job: Job, provider: Provider, styles: Mapping[str, StyleConfig], init_image: bytes | None
) -> str | None:
    """What identifies a job's result when its provider draws the same image for the same seed."""
    request = job.request
    if request.seed is None or not provider.capabilities.deterministic:
        return None
    styled = effective_prompt(request, styles)
    parts = {
        "provider": job.provider, "type": provider.type_name, "model": provider.model,
        "request": request.model_dump(mode="json", exclude={"style", "provider", "source_job_id"}),
        "prompt": styled.prompt, "negative": styled.negative_prompt,
        "size": provider.size_for(request.aspect_ratio),
        "source": hashlib.sha256(init_image).hexdigest() if init_image is not None else None,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _job_seed(job: Job) -> int:
    """A seed fixed per job, so a retried attempt draws the same images."""
    return int.from_bytes(hashlib.sha256(job.id.encode()).digest()[:4], "big")


def _png_with_parameters(image: GeneratedImage, params: dict[str, str]) -> bytes:
    png = image.data if image.mime == "image/png" else imaging.to_png(image.data)
    return imaging.embed_parameters(png, params)


def _parameters(job: Job, image: GeneratedImage) -> dict[str, str]:
    request = job.request
    params = {
        "prompt": request.prompt,
        "seed": "" if image.seed is None else str(image.seed),
        "size": f"{image.width}x{image.height}",
        "provider": image.provider,
        "model": image.model,
        "job": job.id,
        "aspect": str(request.aspect_ratio),
    }
    optional = {
        "negative_prompt": request.negative_prompt,
        "style": request.style,
        "steps": request.steps,
        "cfg": request.cfg,
        "quality": request.quality,
        "revised_prompt": image.revised_prompt,
    }
    params.update({k: str(v) for k, v in optional.items() if v is not None})
    return params
