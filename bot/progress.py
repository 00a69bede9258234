"""Turning job events into edits of the job's card, through each surface's throttle.

Events (queued with position and ETA, started, progress, preview, finished, failed, cancelled)
become :class:`~bot.surface.Card` frames. Ordinary frames go through the surface's
:class:`~bot.throttle.EditThrottle`, which coalesces them and drops stale ones; the final frame
is always delivered, then the images (for a finished job), and only then is the job marked
delivered, so a crash at any point re-delivers at most what was not confirmed. A delivery the
platform refused (an outage, or a rate-limit storm longer than its client library waits out) is
tried again after each of :data:`REDELIVERY_DELAYS`, then left for the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from bot.clock import Clock
from bot.delivery import build_delivery
from bot.generation import ProgressUpdate
from bot.jobs import ImageRecord, Job, JobStatus
from bot.surface import Card, Surface
from bot.throttle import EditThrottle
from storage import faults
from storage.base import BlobStore, Storage

log = logging.getLogger(__name__)

#: Seconds before each new try of a failed delivery; after the last, the next start delivers it.
REDELIVERY_DELAYS = (2.0, 10.0, 60.0, 300.0)


class ProgressReporter:
    """Per-job card updates and final delivery, for every surface."""

    def __init__(
        self,
        *,
        surfaces: Mapping[str, Surface],
        storage: Storage,
        blobs: BlobStore,
        clock: Clock,
        redelivery_delays: Sequence[float] = REDELIVERY_DELAYS,
    ) -> None:
        self._surfaces: dict[str, Surface] = {}
        #: Seconds before each new try of a failed delivery (tests shorten them).
        self.redelivery_delays = tuple(redelivery_delays)
        self._redeliveries: set[asyncio.Task[None]] = set()
        self._storage = storage
        self._blobs = blobs
        self._clock = clock
        self._throttles: dict[str, EditThrottle] = {}
        self._last_progress: dict[str, ProgressUpdate] = {}
        for surface in surfaces.values():
            self.add_surface(surface)

    def add_surface(self, surface: Surface) -> None:
        """Start showing jobs of ``surface.name`` on this surface."""
        self._surfaces[surface.name] = surface
        self._throttles[surface.name] = EditThrottle(surface.throttle, self._clock)

    @property
    def throttles(self) -> Mapping[str, EditThrottle]:
        return self._throttles

    # --- ordinary frames (coalesced, may be dropped) -------------------------------------------
    def queued(self, job: Job, position: int | None, eta_seconds: float | None) -> None:
        self._offer(Card(job=job, status=JobStatus.QUEUED, position=position, eta_seconds=eta_seconds))

    def started(self, job: Job) -> None:
        self._last_progress.pop(job.id, None)
        self._offer(Card(job=job, status=JobStatus.RUNNING, fraction=0.0))

    def progress(self, job: Job, update: ProgressUpdate) -> None:
        last = self._last_progress.get(job.id)
        preview = update.preview if update.preview is not None else (last.preview if last else None)
        self._last_progress[job.id] = ProgressUpdate(
            fraction=update.fraction, text=update.text, preview=preview,
            queue_position=update.queue_position, eta_seconds=update.eta_seconds,
        )
        self._offer(Card(
            job=job,
            status=JobStatus.RUNNING,
            fraction=update.fraction,
            step_text=update.text,
            preview=preview,
            position=update.queue_position,
            eta_seconds=update.eta_seconds,
        ))

    # --- the final state (always delivered) ---------------------------------------------------
    async def finish(
        self,
        job: Job,
        *,
        error: str | None = None,
        served_by: str | None = None,
        datas: list[bytes] | None = None,
        images: list[ImageRecord] | None = None,
    ) -> bool:
        """Show the final card and, for a finished job, deliver its images; then mark delivered.

        Returns whether the surface confirmed everything. A job whose surface is not running
        (say, a Discord job while the bot runs without Discord) stays undelivered for later; one
        the surface failed is tried again later in the background.
        """
        self._last_progress.pop(job.id, None)
        surface = self._surfaces.get(job.origin.platform)
        if surface is None:
            log.warning("job %s: no %s surface is running; delivery postponed", job.id, job.origin.platform)
            return False

        async def attempt() -> bool:
            return await self._hand_over(surface, job, error=error, served_by=served_by, datas=datas, images=images)

        if await attempt():
            return True
        self._try_again(job, surface, attempt, 0)
        return False

    async def _hand_over(
        self,
        surface: Surface,
        job: Job,
        *,
        error: str | None,
        served_by: str | None,
        datas: list[bytes] | None,
        images: list[ImageRecord] | None,
    ) -> bool:
        card = Card(job=job, status=job.status, fraction=1.0 if job.status is JobStatus.SUCCEEDED else None,
                    error=error, served_by=served_by)
        try:
            await self._throttles[surface.name].final(job.id, self._scope(surface, job), self._sender(surface, card))
            if job.status is JobStatus.SUCCEEDED:
                if images is None:
                    images = await self._storage.job_images(job.id)
                delivery = await build_delivery(job, images, self._blobs, surface, served_by=served_by, datas=datas)
                refs = await surface.deliver(delivery)
                if refs:
                    await self._remember(job, refs)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job %s: delivery to %s failed", job.id, surface.name)
            return False
        job.delivered_at = self._clock.now()
        try:
            await self._storage.mark_delivered(job.id, delivered_at=job.delivered_at)
        except Exception as exc:
            trouble = faults.storage_unavailable(exc)
            if trouble is None:
                raise
            log.error("job %s: delivered, but %s, so that was not recorded; a restart may offer it again",
                      job.id, trouble.reason)
        return True

    def _try_again(self, job: Job, surface: Surface, attempt: Callable[[], Awaitable[bool]], tries: int) -> None:
        if tries >= len(self.redelivery_delays):
            log.warning("job %s: %s refused its delivery %d times; the next start will deliver it",
                        job.id, surface.name, tries + 1)
            return
        delay = self.redelivery_delays[tries]
        log.info("job %s: trying its delivery to %s again in %g s", job.id, surface.name, delay)

        async def later() -> None:
            await self._clock.sleep(delay)
            if not await attempt():
                self._try_again(job, surface, attempt, tries + 1)

        task = asyncio.create_task(later(), name=f"imaginebot-redeliver-{job.id}")
        self._redeliveries.add(task)
        task.add_done_callback(self._redeliveries.discard)

    async def aclose(self) -> None:
        """Stop trying failed deliveries again (the next start does), then send the finals still owed."""
        for task in list(self._redeliveries):
            task.cancel()
        await asyncio.gather(*self._redeliveries, return_exceptions=True)
        for throttle in self._throttles.values():
            await throttle.aclose()

    # --- internals ----------------------------------------------------------------------------
    def _offer(self, card: Card) -> None:
        surface = self._surfaces.get(card.job.origin.platform)
        if surface is None:
            return
        self._throttles[surface.name].update(card.job.id, self._scope(surface, card.job), self._sender(surface, card))

    def _sender(self, surface: Surface, card: Card) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            refs = await surface.show(card)
            if refs:
                await self._remember(card.job, refs)

        return send

    async def _remember(self, job: Job, refs: dict[str, str]) -> None:
        job.message_refs.update(refs)
        try:
            await self._storage.set_message_refs(job.id, refs)
        except Exception as exc:
            trouble = faults.storage_unavailable(exc)
            if trouble is None:
                raise
            log.error("job %s: %s, so its message ids are kept in memory only", job.id, trouble.reason)

    @staticmethod
    def _scope(surface: Surface, job: Job) -> str:
        origin = job.origin
        if surface.throttle.per_server:
            return f"{origin.platform}:{origin.server_id}"
        return f"{origin.platform}:{origin.channel_id}"
