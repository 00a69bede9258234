"""Busy channels and Slack's limits: 15 jobs at once cause no 429; a 429 is honoured; files fit."""

from __future__ import annotations

import asyncio
import time

from slack_sdk.errors import SlackApiError

from bot.jobs import JobStatus
from tests.adapters.slack.conftest import SCALED_THROTTLE, SKETCH, World, WorldFactory
from tests.fakes.slack.webapi import Fault


async def test_fifteen_concurrent_jobs_in_one_channel_provoke_no_429(world: World) -> None:
    fake = world.fake
    people = [world.alice, world.bob]
    sent = await asyncio.gather(*(
        world.driver.slash("/imagine", f"tile {i} --n 1", user=people[i % 2], channel=world.channel)
        for i in range(15)
    ))
    assert all(s.acked.status == 200 and s.acked.seconds < 3.0 for s in sent)
    jobs = await world.new_jobs(set(), 15)
    done = await asyncio.gather(*(world.finished(j.id, timeout=60) for j in jobs))
    assert all(j.status is JobStatus.SUCCEEDED for j in done)
    assert all(len(world.thread(j)) == 1 for j in done)  # each job's files in its own card's thread
    assert len(fake.calls_to("files.completeUploadExternal")) == 15
    assert fake.limiter.rejected == 0, fake.limiter.rejected_methods
    assert fake.spec.violations == []
    _assert_paced([world.card(j).edits for j in done])


def _assert_paced(edits: list[list[float]]) -> None:
    """At most one update per card per interval, and at most N updates in any window of the workspace."""
    slack = 0.05  # request arrival jitter at the fake, against sends timed by the bot
    for times in edits:
        assert all(b - a >= SCALED_THROTTLE.per_message_seconds - slack for a, b in zip(times, times[1:], strict=False))
    everything = sorted(t for times in edits for t in times)
    n, window = SCALED_THROTTLE.window_edits, SCALED_THROTTLE.window_seconds
    for i in range(len(everything) - n):
        assert everything[i + n] - everything[i] >= window - slack


async def test_a_429_is_honoured_with_retry_after(make_world: WorldFactory) -> None:
    world = await make_world(transport="http")
    fake = world.fake
    fake.fail_next("chat.postMessage", Fault(headers={"Retry-After": "1"}))
    started = time.monotonic()
    job = await world.imagine("patience --n 1")
    posts = fake.calls_to("chat.postMessage")
    assert [c.status for c in posts[:2]] == [429, 200]
    assert posts[1].at - posts[0].at >= 1.0  # waited the Retry-After before trying again
    assert time.monotonic() - started < 10
    assert job.status is JobStatus.SUCCEEDED and world.thread(job)


async def test_the_fake_enforces_its_limits_for_real(make_world: WorldFactory) -> None:
    """Without the throttle, a burst of updates meets Slack's Tier 3 limit (so the zero above means something)."""
    world = await make_world()
    fake = world.fake
    card = fake.post(world.channel, "hello", [])
    client = world.slack.context.client
    client.retry_handlers = []  # this test wants to see the 429, not wait it out
    statuses = []
    for _ in range(55):
        try:
            await client.chat_update(channel=world.channel, ts=card.ts, text="again")
            statuses.append(200)
        except SlackApiError as exc:
            statuses.append(exc.response.status_code)
    assert statuses.count(429) >= 5
    limited = [c for c in fake.calls_to("chat.update") if c.status == 429]
    assert limited and limited[0].answer == {"ok": False, "error": "ratelimited"}


async def test_images_over_the_upload_limit_are_re_encoded(make_world: WorldFactory) -> None:
    limit_mb = 0.02
    world = await make_world(slack={"upload_limit_mb": limit_mb}, providers={"sketch": {**SKETCH, "size": 512}})
    world.fake.upload_limit = int(limit_mb * 1024 * 1024)
    job = await world.imagine("busy city street, many details --n 2")
    (upload,) = [u for u in world.fake.uploads if u.thread_ts == world.card(job).ts]
    assert len(upload.files) == 3
    assert all(f.data is not None and len(f.data) <= world.fake.upload_limit for f in upload.files)
    assert any(not f.filename.endswith(".png") for f in upload.files)
    assert world.fake.oversized_uploads == 0
