"""Buttons on the card: upscale, variations, reroll, delete, favourite; they work after a restart."""

from __future__ import annotations

from bot.jobs import JobStatus
from bot.request import JobKind
from tests.adapters.slack.conftest import World, WorldFactory


async def test_buttons_work_after_a_restart(world: World) -> None:
    job = await world.imagine("a red boat --n 2")
    await world.restart()
    before = await world.job_ids()
    pressed = await world.driver.press(world.card(job), f"ib:v:{job.id}:2", user=world.bob)
    assert pressed.acked.status == 200 and pressed.acked.seconds < 3.0
    (variation,) = await world.new_jobs(before)
    variation = await world.finished(variation.id)
    assert variation.request.kind is JobKind.VARIATION and variation.request.source_image_index == 1
    assert variation.origin.user_id == world.bob and variation.status is JobStatus.SUCCEEDED
    # Its card is a new message in the channel, with its own thread of results.
    card = world.card(variation)
    assert card.channel == world.channel and card.thread_ts is None and world.thread(variation)
    before = await world.job_ids()
    await world.driver.press(world.card(job), f"ib:r:{job.id}", user=world.alice)
    (reroll,) = await world.new_jobs(before)
    assert reroll.request.prompt == job.request.prompt and reroll.request.seed is None
    assert world.fake.limiter.rejected == 0 and world.fake.spec.violations == []


async def test_upscale_favourite_and_delete_buttons(make_world: WorldFactory) -> None:
    world = await make_world(transport="http")
    job = await world.imagine("a green door --n 2")
    card = world.card(job)
    before = await world.job_ids()
    await world.driver.press(card, f"ib:u:{job.id}:1", user=world.alice)
    (upscale,) = await world.new_jobs(before)
    upscale = await world.finished(upscale.id)
    assert upscale.request.kind is JobKind.UPSCALE and upscale.status is JobStatus.SUCCEEDED
    # An upscale has one image: no U/V buttons on its card.
    assert not [a for a in world.card(upscale).action_ids() if a.startswith(("ib:u:", "ib:v:"))]
    await world.driver.press(card, f"ib:f:{job.id}", user=world.bob)
    assert "favourites" in (await world.ephemeral(world.bob, "favourites")).text
    assert len((await world.app.storage.favourites("slack", world.bob)).items) == 2

    await world.driver.press(card, f"ib:d:{job.id}", user=world.bob)
    refusal = await world.ephemeral(world.bob, "Only the person")
    assert refusal.via == "response_url"
    assert not card.deleted
    await world.driver.press(card, f"ib:d:{job.id}", user=world.admin)
    await world.ephemeral(world.admin, "Deleted")  # said once the card and files are gone
    assert card.deleted and (await world.app.storage.get_job(job.id)).deleted  # type: ignore[union-attr]
    (upload,) = [u for u in world.fake.uploads if u.thread_ts == card.ts]
    assert all(f.deleted for f in upload.files)
    assert world.fake.spec.violations == []


async def test_cancel_button_on_a_waiting_card(make_world: WorldFactory) -> None:
    world = await make_world(providers={"sketch": {"type": "sketch", "delay": 5.0, "size": 64}})
    before = await world.job_ids()
    await world.driver.slash("/imagine", "a very slow snail --n 1", user=world.alice, channel=world.channel)
    (job,) = await world.new_jobs(before)
    await world.fake.wait_until(lambda: f"ib:c:{job.id}" in world.card(job).action_ids())
    await world.driver.press(world.card(job), f"ib:c:{job.id}", user=world.alice)
    assert job.id in (await world.ephemeral(world.alice, "Cancelled job")).text
    done = await world.finished(job.id)
    assert done.status is JobStatus.CANCELLED
    await world.fake.wait_until(lambda: "Cancelled" in world.card(job).text)
    assert not [a for a in world.card(job).action_ids() if a.startswith("ib:")]
