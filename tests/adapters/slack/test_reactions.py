"""Reaction shortcuts, in both transports: reroll, variations, delete, favourite, DM; the bot's own
reactions and reactions on other people's messages are ignored."""

from __future__ import annotations

import asyncio

from bot.request import JobKind
from tests.adapters.slack.conftest import World, WorldFactory


async def test_repeat_and_numbers_make_new_jobs_of_the_reacting_member(world: World) -> None:
    job = await world.imagine("a tin robot --n 2")
    card = world.card(job)
    before = await world.job_ids()
    acked = await world.driver.react(card, "repeat", user=world.bob)
    assert acked.status == 200 and acked.seconds < 3.0
    (reroll,) = await world.new_jobs(before)
    assert reroll.origin.user_id == world.bob and reroll.request.prompt == job.request.prompt
    before = await world.job_ids()
    # On the upload in the card's thread, after a restart: found through conversations.replies.
    await world.restart()
    (upload_message,) = world.thread(job)
    await world.driver.react(upload_message, "two", user=world.alice)
    (variation,) = await world.new_jobs(before)
    assert variation.request.kind is JobKind.VARIATION and variation.request.source_image_index == 1
    assert world.fake.calls_to("conversations.replies")
    assert world.fake.spec.violations == []


async def test_x_deletes_for_the_author_or_an_admin_only(world: World) -> None:
    job = await world.imagine("a paper crane --n 1")
    card = world.card(job)
    await world.driver.react(card, "x", user=world.bob)
    refusal = await world.ephemeral(world.bob, "Only the person")
    assert refusal.via == "chat.postEphemeral" and refusal.channel == world.channel
    assert not card.deleted
    await world.driver.react(card, "x", user=world.admin)
    await world.fake.wait_until(lambda: card.deleted)
    assert (await world.app.storage.get_job(job.id)).deleted  # type: ignore[union-attr]


async def test_star_favourites_and_envelope_sends_the_images_by_dm(make_world: WorldFactory) -> None:
    world = await make_world(transport="http")
    job = await world.imagine("two lanterns --n 2")
    card = world.card(job)
    await world.driver.react(card, "star", user=world.bob)

    async def favourites() -> int:
        return len((await world.app.storage.favourites("slack", world.bob)).items)

    for _ in range(200):
        if await favourites() == 2:
            break
        await asyncio.sleep(0.02)
    assert await favourites() == 2
    await world.driver.react(card, "envelope", user=world.bob)
    dm = world.fake.dm_with(world.bob)
    await world.fake.wait_until(lambda: any(u.channel == dm.id for u in world.fake.uploads))
    (sent,) = [u for u in world.fake.uploads if u.channel == dm.id]
    assert [f.filename for f in sent.files] == [f"{job.id}-1.png", f"{job.id}-2.png"]
    assert f"job `{job.id}`" in sent.comment


async def test_own_reactions_other_messages_and_other_emoji_are_ignored(make_world: WorldFactory) -> None:
    world = await make_world()
    job = await world.imagine("a quiet pond --n 1")
    card = world.card(job)
    before = await world.job_ids()
    await world.driver.react(card, "repeat", user=world.fake.bot.id)
    someone = world.fake.post(world.channel, f"job {job.id}: look at this", [], user=world.bob)
    await world.driver.react(someone, "repeat", user=world.alice)
    await world.driver.react(card, "tada", user=world.alice)
    await asyncio.sleep(0.5)
    assert await world.job_ids() == before
    assert not world.fake.ephemerals_for(world.alice)
