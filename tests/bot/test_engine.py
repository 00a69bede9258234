"""The job lifecycle: retries, fallback, refusals, timeouts, shutdown and restart recovery."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.app import App, build_app
from bot.clock import SystemClock
from bot.config import config_from_dict
from bot.errors import ProviderError, ProviderRateLimited, ProviderRefused, ProviderUnavailable
from bot.generation import GeneratedImage, ProgressCallback, ProviderCall
from bot.jobs import Job, JobStatus, Origin, new_job_id
from bot.request import GenerationRequest
from providers.registry import build_providers
from providers.sketch import SketchProvider
from tests.fakes.surface import RecordingSurface

ALICE = Origin(platform="web", server_id="local", channel_id="general", user_id="alice")


class ScriptedProvider(SketchProvider):
    """The sketch provider, failing its first calls with the errors a test lines up."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.failures: list[ProviderError] = []
        self.calls = 0

    async def generate(self, call: ProviderCall, progress: ProgressCallback) -> list[GeneratedImage]:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return await super().generate(call, progress)


async def _app(
    tmp_path: Path, *, queue: dict[str, Any] | None = None, fallback: list[str] | None = None,
    delay: float = 0.02, scripted: Callable[[ScriptedProvider], None] | None = None,
) -> tuple[App, RecordingSurface, ScriptedProvider]:
    sections = {
        "main": {"type": "sketch", "delay": delay, "size": 64, "preview_frames": 1},
        "backup": {"type": "sketch", "delay": 0.01, "size": 64, "preview_frames": 0},
    }
    config = config_from_dict({
        "storage": {"dir": str(tmp_path / "data")},
        "providers": sections,
        "routing": {"default": "main", "fallback": fallback or []},
        "queue": {"retry_base_seconds": 0.01, "retry_max_seconds": 0.05, **(queue or {})},
    }, environ={})
    built = build_providers(config.providers, clock=SystemClock())
    main = ScriptedProvider("main", built["main"].settings)
    if scripted:
        scripted(main)
    app = await build_app(config, providers={"main": main, "backup": built["backup"]})
    surface = RecordingSurface()
    app.add_surface(surface)
    await app.start()
    return app, surface, main


async def _peek(tmp_path: Path, job_id: str) -> Job:
    """The job as stored, read while no bot is running."""
    from storage.sqlite import SqliteStorage

    storage = SqliteStorage(tmp_path / "data" / "imaginebot.db")
    await storage.open()
    try:
        job = await storage.get_job(job_id)
    finally:
        await storage.close()
    assert job is not None
    return job


async def test_a_rate_limited_call_is_retried_and_succeeds(tmp_path: Path) -> None:
    app, surface, main = await _app(
        tmp_path, scripted=lambda p: p.failures.append(ProviderRateLimited("429", retry_after=0.01))
    )
    [job] = await app.service.submit("retry me --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED
    stored = await app.storage.get_job(job.id)
    assert stored is not None and stored.attempts == 2 and main.calls == 2
    await app.stop(0)


async def test_an_unavailable_provider_falls_back_and_says_so(tmp_path: Path) -> None:
    app, surface, _ = await _app(
        tmp_path, fallback=["backup"], scripted=lambda p: p.failures.append(ProviderUnavailable("502"))
    )
    [job] = await app.service.submit("fall back --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED and final.served_by == "backup"
    [image] = await app.storage.job_images(job.id)
    assert image.provider == "backup"
    stored = await app.storage.get_job(job.id)
    assert stored is not None and stored.provider == "backup"
    await app.stop(0)


async def test_a_refusal_is_shown_and_never_retried_or_rerouted(tmp_path: Path) -> None:
    app, surface, main = await _app(
        tmp_path, fallback=["backup"],
        scripted=lambda p: p.failures.append(ProviderRefused("no", reason="violates the content policy")),
    )
    [job] = await app.service.submit("something refused --n 1", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.FAILED
    assert final.error is not None and "violates the content policy" in final.error and "main" in final.error
    assert main.calls == 1 and job.id not in surface.deliveries
    await app.stop(0)


async def test_a_job_that_runs_too_long_is_stopped_and_explained(tmp_path: Path) -> None:
    app, surface, _ = await _app(tmp_path, delay=5.0, queue={"job_timeout_seconds": 0.2, "max_attempts": 2})
    [job] = await app.service.submit("slow --n 1", ALICE)
    final = await surface.wait_final(job.id, timeout=10)
    assert final.status is JobStatus.FAILED
    assert final.error is not None and "gave up after 2 attempts" in final.error and "longer than" in final.error
    await app.stop(0)


async def test_shutdown_requeues_a_running_job_and_restart_finishes_it(tmp_path: Path) -> None:
    app, surface, _ = await _app(tmp_path, delay=30.0)
    [job] = await app.service.submit("interrupted --n 1", ALICE)
    while job.status is not JobStatus.RUNNING:
        await asyncio.sleep(0.01)
    await app.stop(grace_seconds=0)
    stored = await _peek(tmp_path, job.id)
    assert stored.status is JobStatus.QUEUED and stored.attempts == 1

    again, surface2, _ = await _app(tmp_path, delay=0.01)
    final = await surface2.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED
    stored = await again.storage.get_job(job.id)
    assert stored is not None and stored.attempts == 2
    await again.stop(0)


async def test_restart_redelivers_only_what_was_not_confirmed(tmp_path: Path) -> None:
    app, surface, _ = await _app(tmp_path)
    [delivered] = await app.service.submit("delivered fine --n 1", ALICE)
    await surface.wait_final(delivered.id)
    surface.fail_deliveries = 1
    [lost] = await app.service.submit("delivery fails --n 1", ALICE)
    for _ in range(200):
        if surface.fail_deliveries == 0 and not app.engine._background:
            break
        await asyncio.sleep(0.02)
    assert [j.id for j in await app.storage.undelivered_jobs()] == [lost.id]
    await app.stop(0)

    again, surface2, _ = await _app(tmp_path)
    await surface2.wait_final(lost.id)
    assert set(surface2.deliveries) == {lost.id}, "a confirmed delivery is never repeated"
    for _ in range(100):
        if not await again.storage.undelivered_jobs():
            break
        await asyncio.sleep(0.02)
    assert await again.storage.undelivered_jobs() == []
    await again.stop(0)


async def test_a_job_running_when_the_process_died_resumes_with_its_attempt_count(tmp_path: Path) -> None:
    # What a killed process leaves behind: one job marked running after its first attempt,
    # one that had used up its attempts. Written straight to storage, as the dead process had.
    from storage.sqlite import SqliteStorage

    storage = SqliteStorage(tmp_path / "data" / "imaginebot.db")
    (tmp_path / "data").mkdir()
    await storage.open()
    now = SystemClock().now()
    resumable = Job(id=new_job_id(now), origin=ALICE, request=GenerationRequest(prompt="resume", count=1),
                    provider="main", created_at=now)
    exhausted = Job(id=new_job_id(now), origin=ALICE, request=GenerationRequest(prompt="done for", count=1),
                    provider="main", created_at=now)
    await storage.insert_jobs([resumable, exhausted])
    await storage.mark_running(resumable.id, started_at=now, attempts=1)
    await storage.mark_running(exhausted.id, started_at=now, attempts=3)
    await storage.close()

    app, surface, _ = await _app(tmp_path, queue={"max_attempts": 3})
    assert (await surface.wait_final(resumable.id)).status is JobStatus.SUCCEEDED
    final = await surface.wait_final(exhausted.id)
    assert final.status is JobStatus.FAILED and final.error is not None and "gave up after 3" in final.error
    stored = await app.storage.get_job(resumable.id)
    assert stored is not None and stored.attempts == 2
    await app.stop(0)
