"""Discord misbehaving while jobs run: 429 storms, 5xx bursts, and the gateway cut mid-run.

discord.py waits out a 429 and retries a 500/502 by itself, five tries at most; a storm longer
than that, or a 503, reaches the bot as an error. Either way every card ends on "Done" and each
job's images are posted exactly once (the core tries a refused delivery again a little later).
When the gateway drops, discord.py RESUMEs the same session (no new IDENTIFY), events sent in the
gap are replayed, and commands work afterwards.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.jobs import Job, JobStatus, Origin
from tests.adapters.discord.conftest import World
from tests.conftest import AppFactory
from tests.fakes.discord.state import Interaction

MESSAGES = "POST /channels/{channel_id}/messages"
EDITS = "PATCH /channels/{channel_id}/messages/{message_id}"
THREADS = "POST /channels/{channel_id}/messages/{message_id}/threads"


#: The core's pauses before trying a refused delivery again, shortened (in production 2 s, 10 s, ...).
REDELIVERY = (0.3, 0.6, 1.2, 2.4, 4.8)


async def _imagine(world: World, n: int, label: str) -> list[Interaction]:
    world.app.reporter.redelivery_delays = REDELIVERY
    inters = [await world.fake.slash("imagine", {"prompt": f"{label} {i}", "count": 1}, user=world.alice,
                                     channel=world.channel) for i in range(n)]
    await world.fake.wait_until(lambda: all(i.original_id for i in inters), timeout=20)
    return inters


def _results(world: World, job: Job) -> list[str]:
    """Ids of the messages that carry this job's images."""
    return [m.id for m in world.fake.state.messages.values()
            if not m.deleted and any(a.filename.startswith(job.id) for a in m.attachments)]


async def _all_done_once(world: World, inters: list[Interaction], timeout: float = 40.0) -> None:
    jobs = [await world.job_of(i.original_id or "") for i in inters]
    done = await asyncio.gather(*(world.finished(j.id, timeout=timeout) for j in jobs))
    await asyncio.sleep(0.3)  # a duplicate post, were one coming, would arrive by now
    for job, inter in zip(done, inters, strict=True):
        assert job.status is JobStatus.SUCCEEDED and job.delivered_at is not None
        card = world.message(inter.original_id or "")
        assert "Done" in card.embeds[0]["description"], card.embeds[0]
        assert len(_results(world, job)) == 1, f"job {job.id} posted {len(_results(world, job))} times"
    assert world.fake.spec.violations == []


async def test_a_429_storm_longer_than_discordpy_waits_out(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    inters = await _imagine(world, 4, "storm")
    storms = [world.fake.storm(429, 30, retry_after=0.05), world.fake.storm(429, 5, retry_after=0.05, is_global=True)]
    await _all_done_once(world, inters)
    assert all(storm.hits == storm.count for storm in storms), "the storms hit the bot, then blew over"
    assert "trying its delivery to discord again" in caplog.text, "some deliveries needed the core's retry"


async def test_5xx_bursts_on_posts_edits_and_threads(world: World) -> None:
    inters = await _imagine(world, 3, "outage")
    unavailable = world.fake.storm(503, 6, routes=(MESSAGES, THREADS))  # discord.py does not retry a 503
    bad_gateway = world.fake.storm(502, 1, routes=(EDITS,))  # retried by discord.py after a second
    await _all_done_once(world, inters)
    assert unavailable.hits == 6 and bad_gateway.hits == 1
    # And afterwards everything is normal again.
    await _all_done_once(world, await _imagine(world, 2, "after"))


async def test_the_gateway_drops_mid_run_and_discordpy_resumes(world: World) -> None:
    fake = world.fake
    before = await _imagine(world, 3, "before the drop")
    running = await world.job_of(before[-1].original_id or "")
    await fake.gateway.drop(code=4000)
    # Sent while the socket is down: replayed on RESUME, and still answered within its 3 seconds.
    during = await fake.slash("imagine", {"prompt": "during the gap", "count": 1}, user=world.bob,
                              channel=world.channel)
    await fake.wait_until(lambda: fake.gateway.resumes >= 1, timeout=20)
    await fake.wait_until(lambda: during.original_id is not None, timeout=20)
    assert during.responded is not None and during.responded - during.created_real < 3.0
    await _all_done_once(world, [*before, during])
    assert (await world.app.storage.get_job(running.id)) is not None
    after = await _imagine(world, 2, "after the resume")
    await _all_done_once(world, after)
    assert len(fake.gateway.identifies) == 1, "the session was resumed, not started again"
    assert not world.bot.client.is_closed()


async def test_a_surface_down_for_a_while_gets_each_result_once_without_a_restart(make_app: AppFactory) -> None:
    app, surface = await make_app(limits={"burst": 50, "per_user_per_minute": 6000, "max_queued_per_user": 50})
    app.reporter.redelivery_delays = REDELIVERY
    surface.fail_deliveries = 5  # the platform refuses the first five deliveries it is offered
    origin = Origin(platform="web", server_id="local", channel_id="general", user_id="alice")
    jobs = [job for i in range(3) for job in await app.service.submit(f"down {i} --n 1", origin)]
    async with asyncio.timeout(20):
        while await app.storage.undelivered_jobs() or await app.storage.unfinished_jobs():
            await asyncio.sleep(0.02)
    assert surface.fail_deliveries == 0
    assert all(len(surface.deliveries[job.id]) == 1 for job in jobs)


async def test_deliveries_still_refused_at_shutdown_are_left_for_the_next_start(make_app: AppFactory) -> None:
    app, surface = await make_app()
    app.reporter.redelivery_delays = (30.0,)
    surface.fail_deliveries = 1
    origin = Origin(platform="web", server_id="local", channel_id="general", user_id="alice")
    [job] = await app.service.submit("left for later --n 1", origin)
    async with asyncio.timeout(10):
        while surface.fail_deliveries:
            await asyncio.sleep(0.02)
    await app.stop(grace_seconds=0)  # does not wait 30 s for the retry
    again, surface2 = await make_app()
    await surface2.wait_final(job.id)
    assert len(surface2.deliveries[job.id]) == 1 and job.id not in surface.deliveries
