"""End to end through the service: submit, queue, sketch, storage and a recording surface."""

from __future__ import annotations

import asyncio

import pytest

from bot import images as imaging
from bot.app import App
from bot.errors import InvalidRequest, NotAllowed, NotFound, RateLimited
from bot.jobs import Job, JobStatus, Origin
from bot.request import JobKind
from tests.conftest import AppFactory

ALICE = Origin(platform="web", server_id="local", channel_id="general", user_id="alice", user_name="Alice")
BOB = Origin(platform="web", server_id="local", channel_id="general", user_id="bob", user_name="Bob")
async def until_delivered(app: App, job_id: str) -> Job:
    """The stored job once the core has recorded its delivery (right after the surface got it)."""
    for _ in range(200):
        stored = await app.storage.get_job(job_id)
        if stored is not None and stored.delivered_at is not None:
            return stored
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} was never marked delivered")


ADMIN = Origin(platform="web", server_id="local", channel_id="general", user_id="root", is_admin=True)


async def test_a_prompt_becomes_four_images_and_a_grid_with_parameters(make_app: AppFactory) -> None:
    app, surface = await make_app()
    [job] = await app.service.submit("a lighthouse at dusk --ar 16:9 --n 4 --seed 42", ALICE)
    final = await surface.wait_final(job.id)
    assert final.status is JobStatus.SUCCEEDED
    statuses = surface.statuses(job.id)
    assert statuses[0] is JobStatus.QUEUED and JobStatus.RUNNING in statuses
    assert any(c.preview for c in surface.frames[job.id]), "live previews reach the card"
    [delivery] = surface.deliveries[job.id]
    assert len(delivery.files) == 5 and "grid" in delivery.files[0].filename
    grid_info = imaging.image_info(delivery.files[0].data)
    single = imaging.image_info(delivery.files[1].data)
    assert grid_info.width > 2 * single.width - 1 and single.width > single.height  # 16:9 cells
    params = imaging.read_parameters(delivery.files[1].data)
    assert params["prompt"] == "a lighthouse at dusk" and params["seed"] == "42"
    assert imaging.read_parameters(delivery.files[0].data)["seeds"] == "42,43,44,45"
    stored = await until_delivered(app, job.id)
    assert stored.status is JobStatus.SUCCEEDED
    gallery = await app.service.gallery("web", "general")
    assert len(gallery.items) == 4
    history = await app.service.history("web", "general")
    assert [j.id for j in history.items] == [job.id]


async def test_permutations_queue_one_job_each(make_app: AppFactory) -> None:
    app, surface = await make_app()
    jobs = await app.service.submit("a {red, blue} fox --n 1", ALICE)
    assert [j.request.prompt for j in jobs] == ["a red fox", "a blue fox"]
    assert jobs[0].batch_id is not None and jobs[0].batch_id == jobs[1].batch_id
    for job in jobs:
        assert (await surface.wait_final(job.id)).status is JobStatus.SUCCEEDED


async def test_a_bad_flag_is_explained_and_stores_nothing(make_app: AppFactory) -> None:
    app, surface = await make_app()
    with pytest.raises(InvalidRequest, match="--ar"):
        await app.service.submit("a cat --ar sideways", ALICE)
    assert (await app.service.history("web", "general")).items == []
    assert surface.frames == {}


async def test_variation_upscale_and_reroll_build_on_a_finished_job(make_app: AppFactory) -> None:
    app, surface = await make_app()
    [job] = await app.service.submit("a castle --n 2 --seed 7", ALICE)
    await surface.wait_final(job.id)
    variation = await app.service.vary(job.id, 1, BOB)
    upscale = await app.service.upscale(job.id, 0, ALICE)
    reroll = await app.service.reroll(job.id, ALICE)
    for follow_up in (variation, upscale, reroll):
        assert (await surface.wait_final(follow_up.id)).status is JobStatus.SUCCEEDED
    assert variation.request.kind is JobKind.VARIATION and variation.origin.user_id == "bob"
    [up] = await app.storage.job_images(upscale.id)
    [src, _] = await app.storage.job_images(job.id)
    assert (up.width, up.height) == (2 * src.width, 2 * src.height)
    rerolled = await app.storage.job_images(reroll.id)
    assert {r.seed for r in rerolled}.isdisjoint({7, 8})
    with pytest.raises(NotFound, match="no image with that number"):
        await app.service.vary(job.id, 3, ALICE)  # there is no image 4 of 2


async def test_cancel_is_for_the_owner_or_an_admin(make_app: AppFactory) -> None:
    app, surface = await make_app(providers={"sketch": {"type": "sketch", "delay": 30, "size": 64, "concurrency": 1}})
    [running] = await app.service.submit("first --n 1", ALICE)
    [waiting] = await app.service.submit("second --n 1", ALICE)
    with pytest.raises(NotAllowed):
        await app.service.cancel(waiting.id, BOB)
    await app.service.cancel(waiting.id, ALICE)
    await app.service.cancel(running.id, ADMIN)
    for job in (waiting, running):
        final = await surface.wait_final(job.id)
        assert final.status is JobStatus.CANCELLED
        stored = await app.storage.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.CANCELLED
    assert app.engine.queue.running_in("sketch") == 0


async def test_my_queue_shows_positions_and_etas(make_app: AppFactory) -> None:
    app, _ = await make_app(providers={"sketch": {"type": "sketch", "delay": 30, "size": 64, "concurrency": 1}})
    await app.service.submit("a --n 1", BOB)
    mine = [await app.service.submit(f"p{i} --n 1", ALICE) for i in range(2)]
    await asyncio.sleep(0.05)
    entries = await app.service.my_queue(ALICE)
    assert [e.job.id for e in entries] == [m[0].id for m in mine]
    assert [e.position for e in entries] == [1, 2]
    assert all(e.eta_seconds and e.eta_seconds > 0 for e in entries)


async def test_delete_hides_from_gallery_and_needs_ownership(make_app: AppFactory) -> None:
    app, surface = await make_app()
    [job] = await app.service.submit("a boat --n 1", ALICE)
    await surface.wait_final(job.id)
    await app.service.favourite(job.id, 0, BOB)
    assert len((await app.storage.favourites("web", "bob")).items) == 1
    with pytest.raises(NotAllowed):
        await app.service.delete(job.id, BOB)
    await app.service.delete(job.id, ALICE)
    assert (await app.service.gallery("web", "general")).items == []
    with pytest.raises(Exception, match="can't find"):
        await app.service.reroll(job.id, ALICE)


async def test_the_fourth_quick_request_is_rate_limited_with_a_retry_time(make_app: AppFactory) -> None:
    app, _ = await make_app(limits={"burst": 3, "per_user_per_minute": 6})
    for i in range(3):
        await app.service.submit(f"cat {i} --n 1", BOB)
    with pytest.raises(RateLimited) as caught:
        await app.service.submit("cat 4 --n 1", BOB)
    assert caught.value.retry_at is not None and caught.value.retry_at > app.clock.now()
    await app.service.submit("admins are exempt --n 1", ADMIN)


async def test_saved_settings_change_defaults_and_are_guarded(make_app: AppFactory) -> None:
    app, surface = await make_app()
    await app.service.set_settings(ALICE, {"count": 2, "aspect": "3:2"})
    [job] = await app.service.submit("a hill", ALICE)
    assert job.request.count == 2 and str(job.request.aspect_ratio) == "3:2"
    with pytest.raises(NotAllowed):
        await app.service.set_settings(ALICE, {"count": 1}, scope="server")
    with pytest.raises(InvalidRequest, match="no setting 'colour'"):
        await app.service.set_settings(ALICE, {"colour": "red"})
    await surface.wait_final(job.id)


async def test_saved_templates_and_styles_apply(make_app: AppFactory) -> None:
    from bot.config import StyleConfig

    app, surface = await make_app()
    await app.service.save_template(ALICE, "hero", "heroic portrait of {prompt} --ar 2:3 --n 1")
    await app.service.save_style(ADMIN, "ink", StyleConfig(prompt="{prompt}, ink drawing"), scope="server")
    [job] = await app.service.submit("--template hero a knight --style ink", ALICE)
    assert job.request.prompt == "heroic portrait of a knight" and job.request.style == "ink"
    await surface.wait_final(job.id)
    [image] = await app.storage.job_images(job.id)
    data = await app.blobs.get(image.sha256)
    assert imaging.read_parameters(data)["prompt"] == "heroic portrait of a knight"
    assert "ink" in dict(await app.service.styles(BOB))
    with pytest.raises(NotAllowed):
        await app.service.save_template(ALICE, "x", "y", scope="server")


async def test_server_policy_channels_words_and_limits(make_app: AppFactory) -> None:
    from bot.errors import ContentRejected, QuotaExceeded

    app, surface = await make_app()
    with pytest.raises(InvalidRequest, match="server setting"):
        await app.service.set_settings(ALICE, {"blocked_words": "gore"})
    await app.service.set_settings(
        ADMIN, {"allowed_channels": "general, art", "blocked_words": "gore, hot dog", "daily_images_per_user": 2},
        scope="server",
    )
    elsewhere = Origin(platform="web", server_id="local", channel_id="random", user_id="alice")
    with pytest.raises(NotAllowed, match="not enabled in this channel"):
        await app.service.submit("a cat --n 1", elsewhere)
    with pytest.raises(ContentRejected, match='"gore"'):
        await app.service.submit("a GORE scene --n 1", ALICE)
    with pytest.raises(ContentRejected, match="hot dog"):
        await app.service.submit("a hot  dog stand --n 1", ALICE)
    [ok] = await app.service.submit("a gorge at dawn --n 2", ALICE)  # whole words only
    with pytest.raises(QuotaExceeded):
        await app.service.submit("one more --n 1", ALICE)  # the server's own cap of 2 a day
    await surface.wait_final(ok.id)
    assert (await app.service.get_settings(ADMIN, "server")).allowed_channels == ["general", "art"]


async def test_favouriting_a_job_stars_each_of_its_images(make_app: AppFactory) -> None:
    app, surface = await make_app()
    [job] = await app.service.submit("three pears --n 3", ALICE)
    await surface.wait_final(job.id)
    await app.service.favourite_job(job.id, BOB)
    assert len((await app.storage.favourites("web", "bob")).items) == 3
