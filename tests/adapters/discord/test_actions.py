"""Buttons, reactions and context menus, including after the bot restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from bot.jobs import Job, JobStatus
from bot.request import JobKind
from tests.adapters.discord.conftest import World


async def _made(world: World, prompt: str = "a red boat", count: int = 2) -> Job:
    inter = await world.fake.slash("imagine", {"prompt": prompt, "count": count}, user=world.alice,
                                   channel=world.channel)
    await world.fake.wait_until(lambda: inter.original_id is not None)
    return await world.finished((await world.job_of(inter.original_id or "")).id)


async def _new_job(world: World, before: set[str]) -> Job:
    async def jobs() -> list[Job]:
        return [j for u in (world.alice, world.bob, world.admin)
                for j in await world.app.storage.user_jobs("discord", u, list(JobStatus))]

    for _ in range(500):
        fresh = [j for j in await jobs() if j.id not in before]
        if fresh:
            return await world.finished(fresh[0].id)
        await asyncio.sleep(0.02)
    raise AssertionError("no new job")


async def _ids(world: World) -> set[str]:
    return {j.id for u in (world.alice, world.bob, world.admin)
            for j in await world.app.storage.user_jobs("discord", u, list(JobStatus))}


async def test_buttons_and_reactions_work_after_a_restart(world: World) -> None:
    job = await _made(world)
    result_id = job.message_refs["result"]
    await world.restart()
    before = await _ids(world)
    press = await world.fake.press(f"ib:v:{job.id}:2", result_id, user=world.bob)
    variation = await _new_job(world, before)
    assert variation.request.kind is JobKind.VARIATION and variation.request.source_image_index == 1
    assert variation.origin.user_id == world.bob
    assert variation.message_refs["reply"] == press.original_id
    before = await _ids(world)
    await world.fake.react(result_id, "🔁", user=world.bob)
    reroll = await _new_job(world, before)
    assert reroll.request.prompt == job.request.prompt and reroll.origin.user_id == world.bob
    # The card of a reaction's job is a new message in the thread the reaction was in.
    assert reroll.message_refs["channel"] == job.message_refs["thread"]
    assert world.fake.limiter.rejected == 0 and world.fake.spec.violations == []


async def test_upscale_button_and_numbered_reaction(world: World) -> None:
    job = await _made(world)
    before = await _ids(world)
    await world.fake.press(f"ib:u:{job.id}:1", job.message_refs["result"], user=world.alice)
    upscale = await _new_job(world, before)
    assert upscale.request.kind is JobKind.UPSCALE and upscale.status is JobStatus.SUCCEEDED
    before = await _ids(world)
    await world.fake.react(job.message_refs["result"], "1️⃣", user=world.alice)
    variation = await _new_job(world, before)
    assert variation.request.source_image_index == 0


async def test_delete_is_for_the_author_or_an_admin(world: World) -> None:
    job = await _made(world, count=1)
    result_id = job.message_refs["result"]
    inter = await world.fake.press(f"ib:d:{job.id}", result_id, user=world.bob)
    await world.fake.wait_until(lambda: inter.original_id and "Only the person" in world.message(
        inter.original_id).content)
    assert world.message(inter.original_id or "").flags & 64  # only bob sees it
    assert not world.message(result_id).deleted
    await world.fake.react(result_id, "❌", user=world.admin)
    await world.fake.wait_until(lambda: world.message(result_id).deleted)
    assert (await world.app.storage.get_job(job.id)).deleted  # type: ignore[union-attr]


async def test_bot_reactions_and_foreign_messages_are_ignored(world: World) -> None:
    job = await _made(world, count=1)
    before = await _ids(world)
    bot_id = world.fake.state.bot["id"]
    world.fake.state.members[(world.guild, bot_id)] = world.fake.state.members[(world.guild, world.alice)]
    await world.fake.react(job.message_refs["result"], "🔁", user=bot_id)
    await asyncio.sleep(0.5)
    assert await _ids(world) == before


async def test_favourite_and_dm_reactions(world: World) -> None:
    job = await _made(world)
    await world.fake.react(job.message_refs["result"], "⭐", user=world.bob)
    storage = world.app.storage

    async def favourites() -> int:
        return len((await storage.favourites("discord", world.bob)).items)

    for _ in range(200):
        if await favourites() == 2:
            break
        await asyncio.sleep(0.02)
    assert await favourites() == 2
    await world.fake.react(job.message_refs["result"], "✉️", user=world.bob)
    dm = await _dm_channel(world, world.bob)
    await world.fake.wait_until(lambda: any(m.attachments for m in world.fake.messages_in(dm())))
    (sent,) = world.fake.messages_in(dm())
    assert [a.filename for a in sent.attachments] == [f"{job.id}-1.png", f"{job.id}-2.png"]
    assert sent.embeds[0]["footer"]["text"] == f"job {job.id}"


async def _dm_channel(world: World, user: str) -> Callable[[], str]:
    def find() -> str:
        for channel in world.fake.state.channels.values():
            if channel.type == 1 and channel.recipient_id == user:
                return channel.id
        return "none"

    await world.fake.wait_until(lambda: find() != "none")
    return find


async def test_context_menu_picks_an_image_then_varies_it(world: World) -> None:
    job = await _made(world)
    inter = await world.fake.context_menu("Vary this image", job.message_refs["result"], user=world.alice)
    picker = None

    def found() -> bool:
        nonlocal picker
        picker = next((m for m in world.ephemeral_replies() if m.components), None)
        return picker is not None

    await world.fake.wait_until(found)
    assert picker is not None and inter.original_id is not None and world.message(inter.original_id).deleted
    ids = [c["custom_id"] for row in picker.components for c in row["components"]]
    assert ids == [f"ib:v:{job.id}:1", f"ib:v:{job.id}:2"]
    before = await _ids(world)
    await world.fake.press(ids[1], picker.id, user=world.alice)
    assert (await _new_job(world, before)).request.source_image_index == 1
