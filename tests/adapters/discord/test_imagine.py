"""/imagine end to end: defer, card, edits through the throttle, thread and images."""

from __future__ import annotations

from tests.adapters.discord.conftest import SKETCH, World, WorldFactory


async def test_imagine_defers_fast_then_card_thread_and_images(world: World) -> None:
    fake = world.fake
    inter = await fake.slash("imagine", {"prompt": "a lighthouse at dusk", "count": 2}, user=world.alice,
                             channel=world.channel)
    await fake.wait_until(lambda: inter.original_id is not None)
    assert inter.responded is not None and inter.responded - inter.created_real < 3.0
    assert inter.callback_type == 5 and not inter.ephemeral
    card_id = inter.original_id
    job = await world.job_of(card_id)
    job = await world.finished(job.id)
    thread = fake.thread_of(card_id)
    assert thread is not None and thread.parent_id == world.channel
    results = fake.messages_in(thread.id)
    assert len(results) == 1
    result = results[0]
    assert [a.filename for a in result.attachments] == [f"{job.id}-grid.png", f"{job.id}-1.png", f"{job.id}-2.png"]
    assert result.embeds[0]["title"] == "a lighthouse at dusk"
    labels = [c["label"] for row in result.components for c in row["components"]]
    assert labels[:4] == ["U1", "U2", "V1", "V2"]
    assert set(result.reactions) >= {"🔁", "1️⃣", "2️⃣", "⭐"}
    card = world.message(card_id)
    assert "Done" in card.embeds[0]["description"]
    assert fake.spec.violations == []
    assert fake.limiter.rejected == 0



async def test_prompt_is_escaped_and_pings_nobody(world: World) -> None:
    fake = world.fake
    prompt = "@everyone **bold** <@123> " + "x" * 400
    inter = await fake.slash("imagine", {"prompt": prompt, "count": 1}, user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    result = fake.messages_in(job.message_refs["result_channel"])[0]
    title = result.embeds[0]["title"]
    assert len(title) <= 256 and title.endswith("…")
    assert "\\*\\*bold\\*\\*" in title and "@everyone" not in title
    sent = [c for c in fake.calls if c.body.json and ("embeds" in c.body.json or "content" in c.body.json)]
    assert sent and all(c.body.json.get("allowed_mentions", {}).get("parse") == [] for c in sent)


async def test_results_fall_back_to_the_channel_without_thread_permission(make_world: WorldFactory) -> None:
    world = await make_world()
    fake = world.fake
    closed = fake.add_channel(world.guild, "no-threads", threads_allowed=False)
    world.fake.state.channels[closed].threads_allowed = False
    await world.bot.client.wait_until_ready()
    inter = await fake.slash("imagine", {"prompt": "a fox", "count": 1}, user=world.alice, channel=closed)
    await fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    assert fake.thread_of(inter.original_id or "") is None
    assert job.message_refs["result_channel"] == closed
    assert any(m.attachments for m in fake.messages_in(closed))


async def test_thread_mode_channel_posts_results_in_the_channel(make_world: WorldFactory) -> None:
    world = await make_world(discord={"thread_mode": "channel", "reactions": False})
    fake = world.fake
    inter = await fake.slash("imagine", {"prompt": "a fox", "count": 1}, user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    result = world.message(job.message_refs["result"])
    assert result.channel_id == world.channel and not result.reactions


async def test_images_over_the_upload_limit_are_re_encoded(make_world: WorldFactory) -> None:
    limit_mb = 0.02
    world = await make_world(discord={"upload_limit_mb": limit_mb},
                             providers={"sketch": {**SKETCH, "size": 512}})
    fake = world.fake
    fake.upload_limit = int(limit_mb * 1024 * 1024)
    inter = await fake.slash("imagine", {"prompt": "busy city street, many details", "count": 2},
                             user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    files = world.message(job.message_refs["result"]).attachments
    assert len(files) == 3
    assert all(len(f.data) <= fake.upload_limit for f in files)
    assert any(not f.filename.endswith(".png") for f in files)  # at least one had to be re-encoded
    assert fake.oversized_uploads == 0


async def test_intents_are_not_privileged(world: World) -> None:
    (identify,) = world.fake.gateway.identifies
    assert identify["intents"] == (1 << 0) | (1 << 10) | (1 << 13)
