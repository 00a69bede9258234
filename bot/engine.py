"""The engine: the queue's lifecycle from a durable job to a delivered result.

* ``enqueue`` writes jobs to storage before they enter the in-memory fair queue, so a job the
  user was told about survives a crash.
* A dispatcher starts jobs while their provider has free slots; each runs in its own task.
* Failed attempts that are worth retrying wait out their backoff outside the provider's slot.
* ``start`` recovers: running jobs from a dead process go back to the queue with their attempt
  count; finished but undelivered jobs are delivered; delivered jobs are never touched again.
* ``stop`` stops taking work, gives running jobs a grace period, then re-queues the rest.
* A full or read-only disk (``storage/faults.py``) refuses new work with a clear message and
  pauses dispatching (:class:`~bot.pause.StoragePause`), so queued jobs wait instead of failing.
  A job whose images could not be saved is retried like a provider failure; one whose result
  could not be recorded tries the write again, so it finishes once the disk recovers (or after a
  restart, from what storage still says).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from bot import messages
from bot.clock import Clock
from bot.config import QueueConfig
from bot.errors import StorageUnavailable
from bot.eta import DurationStats
from bot.generation import ProgressUpdate, Provider
from bot.jobs import ImageRecord, Job, JobStatus
from bot.pause import StoragePause
from bot.pending import PendingLedger
from bot.progress import ProgressReporter
from bot.request import JobKind
from bot.runner import JobRunner, Outcome
from bot.scheduler import FairQueue, UserKey, user_key
from storage import faults
from storage.base import Storage

log = logging.getLogger(__name__)

POSITION_REFRESH_SECONDS = 2.0


class Engine:
    """Owns the fair queue, the workers and the job lifecycle."""

    def __init__(
        self,
        *,
        storage: Storage,
        providers: Mapping[str, Provider],
        runner: JobRunner,
        reporter: ProgressReporter,
        clock: Clock,
        queue_config: QueueConfig,
        default_max_running: int,
    ) -> None:
        self._storage = storage
        self._providers = providers
        self._runner = runner
        self._reporter = reporter
        self._clock = clock
        self._config = queue_config
        self._default_max_running = default_max_running
        self._max_running: dict[UserKey, int] = {}
        self.queue = FairQueue(
            {name: p.concurrency for name, p in providers.items()},
            max_running_per_user=lambda key: self._max_running.get(key, default_max_running),
        )
        self.durations = DurationStats()
        self.pending = PendingLedger()
        self._running: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self._delayed: dict[str, tuple[Job, asyncio.Task[None]]] = {}
        self._cancelling: set[str] = set()
        self._background: set[asyncio.Task[Any]] = set()
        self._storage_pause = StoragePause(clock, base=queue_config.retry_base_seconds,
                                           cap=queue_config.retry_max_seconds)
        self._wake = asyncio.Event()
        self._positions_dirty = asyncio.Event()
        self._last_position: dict[str, int] = {}
        self._accepting = False
        self._tasks: list[asyncio.Task[None]] = []
        #: Observers (metrics, benchmarks): called when a job is given a slot (``attempts`` still
        #: counts the attempts before this one) and when it finishes.
        self.on_started: list[Callable[[Job], None]] = []
        self.on_finished: list[Callable[[Job], None]] = []

    # --- lifecycle ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Recover unfinished and undelivered jobs, then start dispatching."""
        await self._recover()
        self._accepting = True
        self._tasks = [
            asyncio.create_task(self._dispatch(), name="imaginebot-dispatch"),
            asyncio.create_task(self._refresh_positions(), name="imaginebot-positions"),
        ]
        self._wake.set()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Stop taking work; let running jobs finish within the grace period, re-queue the rest."""
        self._accepting = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        running = [task for _, task in self._running.values()]
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for _, task in list(self._delayed.values()):
            task.cancel()
        await asyncio.gather(*(t for _, t in self._delayed.values()), return_exceptions=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)

    @property
    def accepting(self) -> bool:
        return self._accepting

    # --- taking work --------------------------------------------------------------------------
    async def enqueue(
        self, jobs: list[Job], *, max_running: int | None = None, costs: Mapping[str, float] | None = None
    ) -> None:
        """Persist the jobs (durably), then queue them and show their position.

        Raises :class:`~bot.errors.StorageUnavailable` when the disk cannot take them.
        """
        try:
            with faults.translated():
                await self._storage.insert_jobs(jobs)
        except StorageUnavailable:
            self._storage_pause.fault()
            raise
        for job in jobs:
            if max_running is not None:
                self._max_running[user_key(job)] = max_running
            self.pending.add(job, images=_images_of(job), cost_usd=(costs or {}).get(job.id, 0.0))
            self.queue.push(job)
        for job in jobs:
            self._show_place(job)
        self._changed()

    async def cancel(self, job: Job) -> bool:
        """Cancel a waiting, delayed or running job. False when it had already finished."""
        if self.queue.remove(job.id) is not None:
            await self._finish(job, JobStatus.CANCELLED, error=messages.CANCELLED)
            self._changed()
            return True
        delayed = self._delayed.pop(job.id, None)
        if delayed is not None:
            delayed[1].cancel()
            await self._finish(delayed[0], JobStatus.CANCELLED, error=messages.CANCELLED)
            return True
        running = self._running.get(job.id)
        if running is not None:
            self._cancelling.add(job.id)
            running[1].cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running[1]
            return True
        return False

    def live_job(self, job_id: str) -> Job | None:
        """The in-memory copy of a waiting, delayed or running job."""
        for table in (self._running, self._delayed):
            if job_id in table:
                return table[job_id][0]
        for job in self.queue.waiting_jobs():
            if job.id == job_id:
                return job
        return None

    def place(self, job: Job) -> tuple[int | None, float | None]:
        """(position, ETA seconds) of a waiting job; (None, None) otherwise."""
        place = self.queue.place(job.id)
        if place is None:
            return None, None
        eta = self.durations.eta(job.provider, place.position, self.queue.slots(job.provider))
        return place.position, eta


    # --- dispatching --------------------------------------------------------------------------
    async def _dispatch(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while (pause := self._storage_pause.remaining()) > 0:
                await self._clock.sleep(pause)  # storage is sick: queued jobs wait rather than fail
            while self._accepting and (job := self.queue.pop_ready()) is not None:
                job.started_at = self._clock.now()
                for hook in self.on_started:
                    hook(job)
                task = asyncio.create_task(self._work(job), name=f"imaginebot-job-{job.id}")
                self._running[job.id] = (job, task)
                self._positions_dirty.set()

    def _changed(self) -> None:
        self._wake.set()
        self._positions_dirty.set()

    async def _work(self, job: Job) -> None:
        started = self._clock.monotonic()
        outcome: Outcome | None = None
        try:
            job.attempts += 1
            job.status = JobStatus.RUNNING
            assert job.started_at is not None  # set when the dispatcher gave the job its slot
            # The attempt is recorded while the provider works: if the process dies first, the
            # job is still queued in storage and simply runs again.
            marked = asyncio.ensure_future(self._mark_running(job, job.started_at))
            self._reporter.started(job)
            try:
                outcome = await self._runner.run(job, self._progress_for(job))
            finally:
                await asyncio.shield(marked)
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupted(job))
            return
        except Exception as exc:
            trouble = faults.storage_unavailable(exc)
            if trouble is None:
                log.exception("job %s: unexpected error", job.id)
                outcome = Outcome(error="something went wrong on our side; the admins can see the log.")
            else:
                pause = self._storage_pause.fault()
                log.error("job %s: %s, so its images could not be saved; new jobs wait %.1f s", job.id,
                          trouble.reason, pause)
                outcome = self._runner.storage_failure(job)
        finally:
            self._running.pop(job.id, None)
            self.queue.release(job)
            self._changed()
        await asyncio.shield(self._conclude(job, outcome, self._clock.monotonic() - started))

    async def _mark_running(self, job: Job, started_at: float) -> None:
        try:
            await self._storage.mark_running(job.id, started_at=started_at, attempts=job.attempts)
        except Exception as exc:
            trouble = faults.storage_unavailable(exc)
            if trouble is None:
                raise
            # Harmless: storage still says queued, so after a crash the job simply runs again.
            log.error("job %s: %s, so its start could not be recorded", job.id, trouble.reason)

    def _progress_for(self, job: Job) -> Callable[[ProgressUpdate], Any]:
        async def progress(update: ProgressUpdate) -> None:
            self._reporter.progress(job, update)

        return progress

    async def _conclude(self, job: Job, outcome: Outcome, seconds: float) -> None:
        try:
            if outcome.succeeded:
                if outcome.served_by:
                    # Storage records who drew it (for reroll and variations); the job in hand keeps
                    # the provider asked for, so its card can say "by X (fallback: Y was unavailable)".
                    await self._storage.set_provider(job.id, outcome.served_by)
                await self._finish(
                    job, JobStatus.SUCCEEDED, images=outcome.images, served_by=outcome.served_by,
                    datas=outcome.datas,
                )
                self.durations.record(job.provider, seconds)
            elif outcome.retry_in is not None:
                await self._retry_later(job, outcome.retry_in, outcome.error)
            else:
                await self._finish(job, JobStatus.FAILED, error=outcome.error)
        except Exception as exc:
            trouble = faults.storage_unavailable(exc)
            if trouble is None:
                raise
            self._conclude_later(job, outcome, seconds, trouble.reason)
            return
        if outcome.succeeded:  # images saved and recorded: the disk is well
            self._storage_pause.ok()

    def _conclude_later(self, job: Job, outcome: Outcome, seconds: float, reason: str) -> None:
        """Write the outcome again after a pause (the provider is not asked again)."""
        delay = self._storage_pause.fault()
        # Said loudly once per sick spell; while the disk stays sick, later tries would only repeat it.
        log.log(logging.ERROR if self._storage_pause.faults == 1 else logging.DEBUG,
                "job %s: %s, so its result could not be recorded; trying again in %.1f s", job.id, reason, delay)
        job.status = JobStatus.QUEUED

        async def wait_then_write() -> None:
            await self._clock.sleep(delay)
            self._delayed.pop(job.id, None)
            await self._conclude(job, outcome, seconds)

        task = asyncio.create_task(wait_then_write(), name=f"imaginebot-rewrite-{job.id}")
        self._delayed[job.id] = (job, task)

    async def _interrupted(self, job: Job) -> None:
        if job.id in self._cancelling:
            self._cancelling.discard(job.id)
            await self._finish(job, JobStatus.CANCELLED, error=messages.CANCELLED)
            return
        # Shutdown: the job goes back to the queue, attempt count kept, and resumes on restart.
        job.status = JobStatus.QUEUED
        await self._storage.requeue(job.id, attempts=job.attempts, error=None)

    async def _retry_later(self, job: Job, delay: float, error: str | None) -> None:
        await self._storage.requeue(job.id, attempts=job.attempts, error=error)
        job.status = JobStatus.QUEUED
        job.error = error

        async def wait_then_queue() -> None:
            await self._clock.sleep(delay)
            self._delayed.pop(job.id, None)
            self.queue.push(job, front=True)
            self._changed()

        task = asyncio.create_task(wait_then_queue(), name=f"imaginebot-retry-{job.id}")
        self._delayed[job.id] = (job, task)
        self._reporter.queued(job, None, delay)

    async def _finish(
        self,
        job: Job,
        status: JobStatus,
        *,
        error: str | None = None,
        images: list[ImageRecord] | None = None,
        served_by: str | None = None,
        datas: list[bytes] | None = None,
    ) -> None:
        finished_at = self._clock.now()
        await self._storage.finish_job(
            job.id, status=status, finished_at=finished_at, error=error, images=images or ()
        )
        job.status, job.error, job.finished_at = status, error, finished_at
        self._last_position.pop(job.id, None)
        self.pending.remove(job)
        for hook in self.on_finished:
            hook(job)
        self._spawn(self._reporter.finish(job, error=error, served_by=served_by, datas=datas, images=images))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # --- positions ----------------------------------------------------------------------------
    def _show_place(self, job: Job) -> None:
        position, eta = self.place(job)
        if position is not None:
            self._last_position[job.id] = position
        self._reporter.queued(job, position, eta)

    async def _refresh_positions(self) -> None:
        """Every few seconds, tell waiting jobs whose position changed."""
        while True:
            await self._positions_dirty.wait()
            self._positions_dirty.clear()
            for job, place in self.queue.all_places():
                if _worth_telling(self._last_position.get(job.id), place.position):
                    self._last_position[job.id] = place.position
                    eta = self.durations.eta(job.provider, place.position, self.queue.slots(job.provider))
                    self._reporter.queued(job, place.position, eta)
            await self._clock.sleep(POSITION_REFRESH_SECONDS)

    # --- recovery -----------------------------------------------------------------------------
    async def _recover(self) -> None:
        unfinished = await self._storage.unfinished_jobs()
        for job in unfinished:
            if job.provider not in self._providers:
                await self._finish(job, JobStatus.FAILED, error=f"provider {job.provider} is no longer configured.")
                continue
            if job.status is JobStatus.RUNNING:
                if job.attempts >= self._config.max_attempts:
                    reason = messages.gave_up(job.attempts, "the bot stopped while it was running")
                    await self._finish(job, JobStatus.FAILED, error=reason)
                    continue
                job.status = JobStatus.QUEUED
                await self._storage.requeue(job.id, attempts=job.attempts, error=None)
            self.pending.add(job, images=_images_of(job), cost_usd=0.0)
            self.queue.push(job)
        for job in await self._storage.undelivered_jobs():
            self._spawn(self._reporter.finish(job, error=job.error, served_by=None))
        if unfinished:
            log.info("recovered %d unfinished jobs", len(unfinished))


def _images_of(job: Job) -> int:
    return 1 if job.request.kind is JobKind.UPSCALE else job.request.count


def _worth_telling(shown: int | None, position: int) -> bool:
    """Whether a waiting job's card should show its new position.

    Near the front every step counts; far back, only a move of a tenth or more, so a deep queue
    does not turn every started job into thousands of card edits.
    """
    if shown is None:
        return True
    if position == shown:
        return False
    return position <= 20 or abs(shown - position) * 10 >= shown
