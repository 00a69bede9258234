"""Flapping providers: the OpenAI fake fails, recovers, times out and fails again while jobs run.

Whatever it does, every job ends exactly once (one final card, one delivery when it succeeded),
either drawn (by OpenAI or, visibly, by the fallback) or failed with a sentence that says why.
The circuit breaker shows: after a run of failures OpenAI is skipped without being called, it
reports itself down, and after its cooldown one trial call closes it again.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from adapters.web.views import card_json
from bot.app import App, build_app
from bot.config import config_from_dict
from bot.jobs import Job, JobStatus, Origin
from bot.surface import Card
from providers.cloud import CloudProvider
from tests.fakes import openai_api
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.surface import RecordingSurface

ALICE = Origin(platform="web", server_id="guild", channel_id="general", user_id="alice")
COOLDOWN = 0.6
#: What a failed job may say: a provider outage, a timeout, or giving up after retries.
CLEAR_FAILURE = re.compile(r"^Failed: (gave up after \d attempts \()?openai (is|and the fallbacks .*) unavailable"
                           r"|^Failed: .*took longer than")

Started = tuple[App, RecordingSurface, CloudProvider]


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def start(tmp_path: Path, openai_fake: FakeOpenAI) -> AsyncIterator[Callable[..., Awaitable[Started]]]:
    apps: list[App] = []

    async def factory(*, fallback: list[str], max_attempts: int = 3) -> Started:
        config = config_from_dict({
            "storage": {"dir": str(tmp_path / f"data{len(apps)}")},
            "providers": {
                "openai": {"type": "openai", "api_key": openai_api.API_KEY, "model": "gpt-image-1",
                           "base_url": f"http://127.0.0.1:{openai_fake.port}/v1", "partial_images": 0,
                           "timeout_seconds": 0.5, "concurrency": 2, "circuit_failures": 3,
                           "circuit_cooldown_seconds": COOLDOWN},
                "sketch": {"type": "sketch", "delay": 0.01, "size": 64, "preview_frames": 0},
            },
            "routing": {"default": "openai", "fallback": fallback},
            "queue": {"retry_base_seconds": 0.02, "retry_max_seconds": 0.1, "max_attempts": max_attempts},
            "limits": {"daily_budget_usd_per_server": 0, "burst": 500, "per_user_per_minute": 60_000,
                       "max_queued_per_user": 500},
        }, environ={})
        app = await build_app(config)
        surface = RecordingSurface()
        app.add_surface(surface)
        await app.start()
        apps.append(app)
        provider = app.providers["openai"]
        assert isinstance(provider, CloudProvider)
        return app, surface, provider

    yield factory
    for app in apps:
        await app.stop(grace_seconds=0)
        for provider in app.providers.values():
            await provider.aclose()


async def _run(app: App, surface: RecordingSurface, n: int, label: str) -> list[tuple[Job, Card]]:
    jobs = [job for i in range(n) for job in await app.service.submit(f"{label} {i} --n 1", ALICE)]
    finals = await asyncio.gather(*(surface.wait_final(job.id, timeout=30) for job in jobs))
    await asyncio.sleep(0.05)  # a second final card or delivery, were there one, would show by now
    for job in jobs:
        assert sum(1 for frame in surface.frames[job.id] if frame.final) == 1, "one final card per job"
        stored = await app.storage.get_job(job.id)
        assert stored is not None and stored.status.finished
        wanted = 1 if stored.status is JobStatus.SUCCEEDED else 0
        assert len(surface.deliveries.get(job.id, [])) == wanted, "delivered once, and only when drawn"
    return list(zip(jobs, finals, strict=True))


def _text(card: Card) -> str:
    """What the card says, as the web playground shows it."""
    text: str = card_json(card)["text"]
    return text


async def test_outage_then_recovery_then_flapping_with_a_fallback(
    start: Callable[..., Awaitable[Started]], openai_fake: FakeOpenAI
) -> None:
    app, surface, openai = await start(fallback=["sketch"])

    # An outage: three failures open the circuit; the rest of the jobs skip OpenAI entirely.
    openai_fake.always = openai_api.server_error(503)
    outage = await _run(app, surface, 8, "outage")
    assert all(card.status is JobStatus.SUCCEEDED and card.served_by == "sketch" for _, card in outage)
    assert all("by sketch (fallback: openai was unavailable)" in _text(card) for _, card in outage)
    calls_in_outage = len(openai_fake.received)
    assert 3 <= calls_in_outage <= 4, "the circuit opened after 3 failures (a 4th may have been in flight)"
    assert openai.circuit.state == "open"
    health = await openai.health()
    assert not health.ok and "circuit open" in health.detail

    # Recovery: after the cooldown one trial call goes through and closes the circuit.
    openai_fake.always = None
    await asyncio.sleep(COOLDOWN + 0.05)
    assert openai.circuit.state == "half-open"
    recovered = await _run(app, surface, 4, "recovered")
    assert any(card.served_by is None for _, card in recovered), "OpenAI serves again"
    assert openai.circuit.state == "closed" and (await openai.health()).ok

    # Flapping: failures, successes and hangs past the timeout, interleaved.
    pattern = [openai_api.server_error(500), None, openai_api.hang(2.0), None, openai_api.server_error(502), None,
               openai_api.rate_limited(0.05), None]
    openai_fake.faults = pattern * 2
    flapping = await _run(app, surface, 12, "flapping")
    assert all(card.status is JobStatus.SUCCEEDED for _, card in flapping), [c.error for _, c in flapping]
    served = {card.served_by for _, card in flapping}
    assert served == {None, "sketch"}, "some drawn by OpenAI, the rest visibly by the fallback"
    assert openai_fake.violations == []


async def test_flapping_without_a_fallback_retries_and_explains_what_it_gave_up_on(
    start: Callable[..., Awaitable[Started]], openai_fake: FakeOpenAI
) -> None:
    app, surface, openai = await start(fallback=[], max_attempts=3)
    openai_fake.faults = [openai_api.server_error(500), None] * 8
    flapping = await _run(app, surface, 8, "no fallback")
    assert sum(card.status is JobStatus.SUCCEEDED for _, card in flapping) >= 4, "retries get most through"
    for job, card in flapping:
        assert card.served_by is None
        if card.status is JobStatus.FAILED:
            assert CLEAR_FAILURE.search(_text(card)), _text(card)
        stored = await app.storage.get_job(job.id)
        assert stored is not None and 1 <= stored.attempts <= 3

    # A hard outage: every job gives up after its attempts, and says so.
    openai_fake.faults = []
    openai_fake.always = openai_api.server_error(503)
    down = await _run(app, surface, 3, "down")
    for _, card in down:
        assert card.status is JobStatus.FAILED and CLEAR_FAILURE.search(_text(card)), _text(card)
        assert "gave up after 3 attempts" in _text(card)
    assert "went wrong" not in " ".join(_text(card) for _, card in flapping + down)
    assert openai.circuit.state in ("open", "half-open")
