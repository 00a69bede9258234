"""Long jobs and busy channels: the card outlives the interaction token; 20 jobs cause no 429."""

from __future__ import annotations

import asyncio

from bot.jobs import JobStatus
from tests.adapters.discord.conftest import SCALED_THROTTLE, SKETCH, World, WorldFactory


async def test_a_job_longer_than_15_minutes_still_finishes_its_card(make_world: WorldFactory) -> None:
    world = await make_world(providers={"sketch": {**SKETCH, "delay": 1.5, "preview_frames": 3}})
    fake = world.fake
    inter = await fake.slash("imagine", {"prompt": "slow glacier", "count": 1}, user=world.alice,
                             channel=world.channel)
    await fake.wait_until(lambda: inter.original_id is not None)
    job = await world.job_of(inter.original_id or "")
    await fake.wait_until(lambda: world.app.engine.live_job(job.id) is not None
                          and world.app.engine.live_job(job.id).status is JobStatus.RUNNING)  # type: ignore[union-attr]
    fake.clock.jump(16 * 60)  # the interaction token is now expired
    edits_before = len(fake.bot_edits.get(inter.original_id or "", []))
    done = await world.finished(job.id)
    assert done.status is JobStatus.SUCCEEDED
    card = world.message(inter.original_id or "")
    assert "Done" in card.embeds[0]["description"]
    assert len(fake.bot_edits[inter.original_id or ""]) > edits_before
    assert fake.expired_token_calls == 0
    assert fake.thread_of(inter.original_id or "") is not None


async def test_twenty_concurrent_jobs_in_one_channel_provoke_no_429(world: World) -> None:
    fake = world.fake
    people = [world.alice, world.bob]
    inters = await asyncio.gather(*(
        fake.slash("imagine", {"prompt": f"tile {i}", "count": 1}, user=people[i % 2], channel=world.channel)
        for i in range(20)
    ))
    await fake.wait_until(lambda: all(i.original_id for i in inters))
    assert all(i.responded is not None and i.responded - i.created_real < 3.0 for i in inters)
    jobs = [await world.job_of(i.original_id or "") for i in inters]
    done = await asyncio.gather(*(world.finished(j.id, timeout=60) for j in jobs))
    assert all(j.status is JobStatus.SUCCEEDED for j in done)
    assert all(fake.thread_of(i.original_id or "") is not None for i in inters)
    assert fake.limiter.rejected == 0
    assert fake.spec.violations == []
    _assert_paced(fake.bot_edits, [i.original_id or "" for i in inters])


def _assert_paced(edits: dict[str, list[float]], cards: list[str]) -> None:
    """At most one edit per card per interval, and at most N edits per window in the channel."""
    slack = 0.05
    everything = sorted(t for card in cards for t in edits.get(card, []))
    for card in cards:
        times = edits.get(card, [])
        assert all(b - a >= SCALED_THROTTLE.per_message_seconds - slack for a, b in zip(times, times[1:], strict=False))
    n, window = SCALED_THROTTLE.window_edits, SCALED_THROTTLE.window_seconds
    for i in range(len(everything) - n):
        assert everything[i + n] - everything[i] >= window - slack
