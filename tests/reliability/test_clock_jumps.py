"""The wall clock jumps (NTP, a VM resumed, an admin) while work is queued and running.

The whole app runs on a :class:`FakeClock`: the sketch provider, the queue, the edit throttle and
the limits all take it. ``jump_wall`` moves only the wall clock, an hour forward or back and
across a UTC midnight, while ``advance`` moves time as it really passes. Intervals (rate limits,
edit pacing, provider work, ETAs) follow monotonic time and ignore the jumps; daily quotas follow
the UTC day the wall clock says, resetting at midnight, and the times users are told are never
negative.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.web.views import card_json
from bot.app import App, build_app
from bot.clock import FakeClock
from bot.config import config_from_dict
from bot.errors import QuotaExceeded, RateLimited
from bot.jobs import Job, JobStatus, Origin
from bot.surface import Card, ThrottlePolicy
from tests.fakes.surface import RecordingSurface

MIDNIGHT = datetime(2024, 3, 11, tzinfo=UTC).timestamp()
HOUR = 3600.0
ALICE = Origin(platform="web", server_id="local", channel_id="general", user_id="alice")
BOB = Origin(platform="web", server_id="local", channel_id="general", user_id="bob")
PACED = ThrottlePolicy(per_message_seconds=2.0, window_edits=4, window_seconds=5.0)
NEGATIVE = re.compile(r"-\s?\d")


class TimedSurface(RecordingSurface):
    """Records when (monotonic) each card frame was sent."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(throttle=PACED)
        self.clock = clock
        self.sent: dict[str, list[float]] = {}

    async def show(self, card: Card) -> dict[str, str] | None:
        self.sent.setdefault(card.job.id, []).append(self.clock.monotonic())
        return await super().show(card)


@pytest.fixture
async def app_on_a_fake_clock(tmp_path: Path) -> AsyncIterator[tuple[App, TimedSurface, FakeClock]]:
    clock = FakeClock(start=MIDNIGHT - 1800)  # 23:30 UTC
    config = config_from_dict({
        "storage": {"dir": str(tmp_path / "data")},
        "providers": {"sketch": {"type": "sketch", "delay": 4.0, "size": 64, "preview_frames": 4,
                                 "concurrency": 1}},
        "limits": {"per_user_per_minute": 6, "burst": 2, "daily_images_per_user": 3, "daily_images_per_server": 0,
                   "daily_budget_usd_per_server": 0, "max_queued_per_user": 50},
    }, environ={})
    app = await build_app(config, clock=clock)
    surface = TimedSurface(clock)
    app.add_surface(surface)
    await app.start()
    yield app, surface, clock
    await app.stop(grace_seconds=0)


async def _pass(clock: FakeClock, seconds: float) -> None:
    """Let ``seconds`` of real time pass, in small steps (storage writes need real moments too)."""
    for _ in range(round(seconds / 0.25)):
        await clock.advance(0.25)
        await asyncio.sleep(0.002)


async def _until(clock: FakeClock, done: Callable[[], bool], limit: float = 120.0) -> None:
    waited = 0.0
    while not done():
        assert waited < limit, "the work did not finish in the fake time allowed"
        await _pass(clock, 0.5)
        waited += 0.5


def _finished(surface: TimedSurface, jobs: list[Job]) -> Callable[[], bool]:
    return lambda: all(job.id in surface.deliveries for job in jobs)


async def test_rate_limits_and_edit_pacing_ignore_wall_jumps_while_work_runs(
    app_on_a_fake_clock: tuple[App, TimedSurface, FakeClock],
) -> None:
    app, surface, clock = app_on_a_fake_clock
    started = clock.monotonic()
    jobs = [job for who in (ALICE, ALICE, BOB) for job in await app.service.submit("a fox --n 1", who)]
    with pytest.raises(RateLimited) as first:
        await app.service.submit("one too many --n 1", ALICE)
    assert "in 10 s" in first.value.message
    for passed, jump in enumerate((+HOUR, -2 * HOUR, +HOUR), start=1):
        await _pass(clock, 1.0)
        clock.jump_wall(jump)
        with pytest.raises(RateLimited) as again:
            await app.service.submit("still too many --n 1", ALICE)
        # The wait counts down with the time that passed, whatever the wall clock did.
        assert f"in {10 - passed} s" in again.value.message, again.value.message
        assert again.value.retry_at is not None and again.value.retry_at - clock.now() == pytest.approx(10 - passed)
    await _pass(clock, 7.0)
    jobs += await app.service.submit("allowed once ten seconds passed --n 1", ALICE)

    # Jumps while the provider works and cards are edited: nothing finishes early or freezes.
    for jump in (+HOUR, -HOUR, -HOUR, +HOUR):
        clock.jump_wall(jump)
        await _pass(clock, 1.0)
    await _until(clock, _finished(surface, jobs))
    for job in jobs:
        times = surface.sent[job.id]
        assert all(b - a >= PACED.per_message_seconds - 1e-6 for a, b in zip(times, times[1:], strict=False)), times
        for frame in surface.frames[job.id]:
            assert frame.eta_seconds is None or frame.eta_seconds >= 0
            text = card_json(frame)["text"]
            assert not NEGATIVE.search(text), text
        assert surface.frames[job.id][-1].status is JobStatus.SUCCEEDED
    # Four sketches of four seconds each, one at a time: sixteen seconds of work, jumps or not.
    assert len(surface.deliveries) == 4
    assert max(surface.sent[job.id][-1] for job in jobs) - started >= 16.0


async def test_daily_quotas_reset_at_utc_midnight_and_follow_the_wall_clock_back(
    app_on_a_fake_clock: tuple[App, TimedSurface, FakeClock],
) -> None:
    app, surface, clock = app_on_a_fake_clock
    made: list[Job] = []
    for _ in range(3):
        made += await app.service.submit("a fox --n 1", ALICE)
        await _pass(clock, 10.0)
    await _until(clock, _finished(surface, made))
    with pytest.raises(QuotaExceeded) as capped:
        await app.service.submit("a fourth --n 1", ALICE)
    assert capped.value.retry_at == MIDNIGHT
    left = MIDNIGHT - clock.now()
    assert 0 < left < 1800 and "resets at 00:00 UTC (in" in capped.value.message
    assert not NEGATIVE.search(capped.value.message)

    clock.jump_wall(MIDNIGHT + 60 - clock.now())  # 00:01 the next day: a new day, a new count
    [fresh] = await app.service.submit("a new day --n 1", ALICE)
    await _until(clock, _finished(surface, [fresh]))
    assert datetime.fromtimestamp((await app.storage.get_job(fresh.id)).finished_at or 0, UTC).day == 11  # type: ignore[union-attr]

    clock.jump_wall(-HOUR)  # back to 23:01 the day before, whose three images are made
    await _pass(clock, 10.0)
    with pytest.raises(QuotaExceeded) as back:
        await app.service.submit("yesterday again --n 1", ALICE)
    assert back.value.retry_at == MIDNIGHT and 0 < MIDNIGHT - clock.now() <= HOUR
    assert not NEGATIVE.search(back.value.message)

    clock.jump_wall(2 * HOUR)  # 01:01: today's count has the one image made at 00:01
    await _pass(clock, 10.0)
    more = await app.service.submit("today again --n 1", ALICE)
    await _until(clock, _finished(surface, more))
    assert all(frame.status is JobStatus.SUCCEEDED for job in more for frame in surface.frames[job.id][-1:])
