"""Every refusal is a clear private answer; the other commands, the modal and the App Home."""

from __future__ import annotations

import json

import pytest

from bot.jobs import JobStatus
from tests.adapters.slack.conftest import World, WorldFactory

BAD_PROMPTS = [
    ("a cat --ar banana", "--ar"),
    ("a cat --ar 9:1", "4:1"),
    ("a cat --n 9", "1 to 4"),
    ("a cat --style nope", "style"),
    ("a cat --provider nope", "provider"),
    ("{a, b", "brace"),
]


@pytest.fixture
async def http_world(make_world: WorldFactory) -> World:
    return await make_world(transport="http")


@pytest.mark.parametrize(("text", "phrase"), BAD_PROMPTS)
async def test_bad_flags_get_a_private_answer_and_leave_no_card(http_world: World, text: str, phrase: str) -> None:
    world = http_world
    sent = await world.driver.slash("/imagine", text, user=world.alice, channel=world.channel)
    assert sent.acked.status == 200 and sent.acked.body == "Queuing your prompt..."
    answer = await world.ephemeral(world.alice, phrase)
    assert answer.via == "response_url"
    await world.fake.wait_until(lambda: not world.fake.top_level(world.channel))  # the placeholder is gone
    assert await world.job_ids() == set()
    assert world.fake.spec.violations == []


async def test_a_batch_gets_one_card_per_job(http_world: World) -> None:
    world = http_world
    before = await world.job_ids()
    await world.driver.slash("/imagine", "a {red, blue} kite --n 1", user=world.alice, channel=world.channel)
    jobs = [await world.finished(j.id) for j in await world.new_jobs(before, 2)]
    assert "Queued 2 jobs" in (await world.ephemeral(world.alice, "Queued")).text
    cards = [world.card(job) for job in jobs]
    assert len({c.ts for c in cards}) == 2 and all(not c.deleted for c in cards)
    assert len(world.fake.top_level(world.channel)) == 2  # the placeholder was removed


async def test_a_channel_without_the_bot_gets_a_clear_answer(http_world: World) -> None:
    world = http_world
    closed = world.fake.add_channel("secret", [world.alice], bot=False)
    await world.driver.slash("/imagine", "a cat", user=world.alice, channel=closed)
    assert "/invite" in (await world.ephemeral(world.alice, "can't post")).text
    assert await world.job_ids() == set()


async def test_history_pages_and_runs_again(http_world: World) -> None:
    world = http_world
    for i in range(6):
        await world.imagine(f"sketch number {i} --n 1")
    await world.driver.slash("/history", "", user=world.bob, channel=world.channel)
    page = await world.ephemeral(world.bob, "History")
    assert "sketch number 5" in json.dumps(page.blocks) and "sketch number 0" not in json.dumps(page.blocks)
    await world.driver.press(page, "ibp:h:2", user=world.bob)
    second = await world.ephemeral(world.bob, "Page 2")
    assert page.replaced and "sketch number 0" in json.dumps(second.blocks)
    run_again = next(a for a in second.action_ids() if a.startswith("ib:a:"))
    before = await world.job_ids()
    await world.driver.press(second, run_again, user=world.bob)
    (again,) = await world.new_jobs(before)
    assert again.origin.user_id == world.bob and again.request.prompt == "sketch number 0"


async def test_gallery_links_to_the_signed_web_gallery(http_world: World) -> None:
    world = http_world
    job = await world.imagine("an orange tree --n 1")
    await world.driver.slash("/gallery", "", user=world.bob, channel=world.channel)
    answer = await world.ephemeral(world.bob, "Gallery")
    link = next(e for b in answer.blocks if b["type"] == "actions" for e in b["elements"] if "url" in e)
    assert link["url"].startswith(f"https://gallery.example/c/slack/{world.channel}?exp=")
    assert job.id in json.dumps(answer.blocks)
    assert (await world.driver.press(answer, "ibl:gallery", user=world.bob)).acked.status == 200


async def test_queue_and_cancel(make_world: WorldFactory) -> None:
    world = await make_world(transport="http", providers={"sketch": {"type": "sketch", "delay": 5.0, "size": 64}})
    before = await world.job_ids()
    for text in ("first slow one --n 1", "second slow one --n 1"):
        await world.driver.slash("/imagine", text, user=world.alice, channel=world.channel)
    first, second = await world.new_jobs(before, 2)
    await world.driver.slash("/queue", "", user=world.alice, channel=world.channel)
    listing = await world.ephemeral(world.alice, "Your queue")
    assert f"ib:c:{first.id}" in listing.action_ids() and f"ib:c:{second.id}" in listing.action_ids()
    await world.driver.press(listing, f"ib:c:{first.id}", user=world.alice)
    await world.ephemeral(world.alice, f"Cancelled job {first.id}")
    await world.driver.slash("/cancel", "", user=world.alice, channel=world.channel)
    await world.ephemeral(world.alice, f"Cancelled job {second.id}")
    assert (await world.finished(first.id)).status is JobStatus.CANCELLED
    assert (await world.finished(second.id)).status is JobStatus.CANCELLED
    await world.driver.slash("/cancel", "", user=world.alice, channel=world.channel)
    await world.ephemeral(world.alice, "nothing waiting")


async def test_settings_are_saved_and_server_policy_is_for_admins(http_world: World) -> None:
    world = http_world
    await world.driver.slash("/settings", "count=2 aspect=16:9", user=world.alice, channel=world.channel)
    saved = await world.ephemeral(world.alice, "Saved your settings")
    assert "`count` 2" in json.dumps(saved.blocks)
    job = await world.imagine("a wide valley")
    assert job.request.count == 2 and str(job.request.aspect_ratio) == "16:9"
    await world.driver.slash("/settings", "server blocked_words=gore, hot dog", user=world.alice,
                             channel=world.channel)
    await world.ephemeral(world.alice, "admin")
    await world.driver.slash("/settings", "server blocked_words=gore, hot dog", user=world.admin,
                             channel=world.channel)
    server = await world.ephemeral(world.admin, "Saved the server settings")
    assert "gore, hot dog" in json.dumps(server.blocks)
    await world.driver.slash("/imagine", "a gore scene", user=world.bob, channel=world.channel)
    await world.ephemeral(world.bob, '"gore"')  # the refusal names the word
    assert [j.request.prompt for j in await world.all_jobs()] == ["a wide valley"]
    await world.driver.slash("/settings", "colour=blue", user=world.bob, channel=world.channel)
    assert "no setting 'colour'" in (await world.ephemeral(world.bob, "setting")).text


async def test_imagine_without_text_opens_the_modal_and_submitting_queues(world: World) -> None:
    sent = await world.driver.slash("/imagine", "", user=world.alice, channel=world.channel)
    assert sent.acked.seconds < 3.0
    await world.fake.wait_until(lambda: world.fake.views)
    (view_id, opened), = world.fake.views.items()
    view = opened.view
    assert view["callback_id"] == "imagine_modal" and view["private_metadata"] == world.channel
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert {"prompt", "negative", "aspect", "count", "provider", "channel"} <= set(blocks)
    assert blocks["channel"]["element"]["initial_conversation"] == world.channel
    before = await world.job_ids()
    acked = await world.driver.submit_view(view_id, {
        "prompt": "a glass whale", "negative": "text, watermark", "aspect": "16:9", "count": "2",
        "provider": "sketch", "channel": world.channel,
    }, user=world.alice)
    assert acked.status == 200
    (job,) = await world.new_jobs(before)
    request = job.request
    assert (request.prompt, request.negative_prompt, str(request.aspect_ratio), request.count) == (
        "a glass whale", "text, watermark", "16:9", 2)
    assert world.card(await world.finished(job.id)).channel == world.channel


async def test_shortcut_opens_the_modal_and_refusals_come_back_privately(http_world: World) -> None:
    world = http_world
    await world.driver.shortcut("imagine_advanced", user=world.bob)
    await world.fake.wait_until(lambda: world.fake.views)
    (view_id, opened), = world.fake.views.items()
    assert opened.view["private_metadata"] == ""
    await world.driver.submit_view(view_id, {"prompt": "a cat --ar 9:1", "channel": world.channel}, user=world.bob)
    refusal = await world.ephemeral(world.bob, "4:1")
    assert refusal.via == "chat.postEphemeral" and refusal.channel == world.channel


async def test_app_home_shows_the_queue_and_recent_images(make_world: WorldFactory) -> None:
    world = await make_world(transport="http")
    done = await world.imagine("a copper kettle --n 1")
    acked = await world.driver.open_home(world.alice)
    assert acked.status == 200
    await world.fake.wait_until(lambda: world.fake.homes.get(world.alice))
    home = world.fake.homes[world.alice][-1]
    text = json.dumps(home)
    assert home["type"] == "home" and "a copper kettle" in text and done.id in text
    assert f"/thumb/{(await world.app.storage.job_images(done.id))[0].sha256}" in text
    assert "You have nothing waiting" in text
    await world.driver.press_in_home(world.alice, "ibm:open")
    await world.fake.wait_until(lambda: world.fake.views)
    assert world.fake.spec.violations == []
