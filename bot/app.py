"""The composition root: build storage, providers, the engine and the service from a config.

Nothing here connects at import time. Surfaces are added after the service exists (they need
it to handle events), which is why the reporter accepts surfaces late.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.clock import Clock, SystemClock
from bot.config import Config, StyleConfig
from bot.engine import Engine
from bot.generation import Provider
from bot.jobs import Job
from bot.limits import Admission
from bot.progress import ProgressReporter
from bot.runner import JobRunner
from bot.service import ImagineService
from bot.surface import Surface
from storage.base import BlobStore, Storage
from storage.faults import GuardedBlobStore

log = logging.getLogger(__name__)


@dataclass
class App:
    """Everything the bot runs, wired together; ``start`` and ``stop`` bracket its life."""

    config: Config
    clock: Clock
    storage: Storage
    blobs: BlobStore
    providers: Mapping[str, Provider]
    reporter: ProgressReporter
    runner: JobRunner
    engine: Engine
    service: ImagineService
    surfaces: dict[str, Surface] = field(default_factory=dict)
    drained: bool = False
    stopped: bool = False

    def add_surface(self, surface: Surface) -> None:
        self.surfaces[surface.name] = surface
        self.reporter.add_surface(surface)

    async def start(self) -> None:
        await self.engine.start()

    async def drain(self, grace_seconds: float = 10.0) -> None:
        """Stop taking work, finish or re-queue running jobs, and send the cards still owed.

        Surfaces must still be up while this runs; close them afterwards, then call ``stop``.
        """
        if self.drained:
            return
        self.drained = True
        await self.engine.stop(grace_seconds)
        await self.reporter.aclose()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """Drain (if not done yet), then close providers and storage (once)."""
        if self.stopped:
            return
        await self.drain(grace_seconds)
        self.stopped = True
        for provider in self.providers.values():
            await provider.aclose()
        await self.storage.close()


async def build_app(
    config: Config,
    *,
    clock: Clock | None = None,
    providers: Mapping[str, Provider] | None = None,
    storage: Storage | None = None,
    blobs: BlobStore | None = None,
) -> App:
    """Open storage and build every part. Pass ``providers``/``storage`` to replace the configured ones."""
    clock = clock or SystemClock()
    if storage is None or blobs is None:
        from storage.blobs import FileBlobStore
        from storage.sqlite import SqliteStorage

        root = config.storage.dir
        root.mkdir(parents=True, exist_ok=True)
        storage = storage or SqliteStorage(root / "imaginebot.db", synchronous=config.storage.synchronous)
        blobs = blobs or FileBlobStore(root / "images", fsync=config.storage.synchronous == "full")
    # A full or read-only disk then reads as StorageUnavailable, a message users can be shown.
    blobs = GuardedBlobStore(blobs)
    if providers is None:
        from providers.registry import build_providers

        # Before storage opens, so a provider config error (say, a bad workflow) leaves nothing open.
        providers = build_providers(config.providers, clock=clock)
    await storage.open()
    reporter = ProgressReporter(surfaces={}, storage=storage, blobs=blobs, clock=clock)
    service_ref: list[ImagineService] = []

    async def styles_for(job: Job) -> Mapping[str, StyleConfig]:
        return await service_ref[0].styles_for(job.origin)

    runner = JobRunner(
        providers=providers, storage=storage, blobs=blobs, clock=clock, queue=config.queue,
        fallback=list(config.routing.fallback), styles_for=styles_for,
    )
    engine = Engine(
        storage=storage, providers=providers, runner=runner, reporter=reporter, clock=clock,
        queue_config=config.queue, default_max_running=config.limits.max_running_per_user,
    )
    admission = Admission(config.limits, storage, clock)
    service = ImagineService(
        config=config, storage=storage, blobs=blobs, providers=providers, engine=engine,
        admission=admission, clock=clock,
    )
    service_ref.append(service)
    return App(
        config=config, clock=clock, storage=storage, blobs=blobs, providers=providers,
        reporter=reporter, runner=runner, engine=engine, service=service,
    )
