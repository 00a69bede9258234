"""Every bad option gets a clear private reply; the browsing commands answer privately."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.jobs import JobStatus
from tests.adapters.discord.conftest import World, WorldFactory
from tests.fakes.discord.state import Message

BAD_OPTIONS = [
    ({"aspect": "banana"}, "--ar"),
    ({"aspect": "9:1"}, "4:1"),
    ({"count": 9}, "1 to 4"),
    ({"seed": 2**40}, "4294967295"),
    ({"style": "nope"}, "style"),
    ({"provider": "nope"}, "provider"),
    ({"prompt": "{a, b"}, "brace"),
]


async def _private_reply(world: World, inter_original: str | None) -> Message:
    fake = world.fake
    await fake.wait_until(lambda: bool(world.ephemeral_replies()))
    (reply,) = world.ephemeral_replies()
    if inter_original is not None:
        assert world.message(inter_original).deleted  # the public "thinking" reply is gone
    return reply


@pytest.mark.parametrize(("options", "phrase"), BAD_OPTIONS)
async def test_bad_options_get_a_clear_private_reply(world: World, options: dict[str, object], phrase: str) -> None:
    inter = await world.fake.slash("imagine", {"prompt": "a cat", **options}, user=world.alice,
                                   channel=world.channel)
    reply = await _private_reply(world, None)
    assert phrase.lower() in reply.content.lower(), reply.content
    assert inter.original_id is not None and world.message(inter.original_id).deleted
    assert world.fake.spec.violations == []


async def test_a_bad_attachment_is_refused_clearly(world: World) -> None:
    await world.fake.slash("imagine", {"prompt": "like this"}, user=world.alice, channel=world.channel,
                           attachment=("notes.png", b"this is not a picture"))
    reply = await _private_reply(world, None)
    assert "image" in reply.content.lower()


async def test_image_to_image_reads_the_attachment(world: World) -> None:
    png = _png()
    inter = await world.fake.slash("imagine", {"prompt": "like this", "count": 1}, user=world.alice,
                                   channel=world.channel, attachment=("ref.png", png))
    await world.fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    assert job.status is JobStatus.SUCCEEDED and job.request.init_image is not None


async def test_rate_limited_users_are_told_when_to_retry(make_world: WorldFactory) -> None:
    world = await make_world(limits={"per_user_per_minute": 1.0, "burst": 1})
    await world.fake.slash("imagine", {"prompt": "one", "count": 1}, user=world.alice, channel=world.channel)
    await world.fake.slash("imagine", {"prompt": "two", "count": 1}, user=world.alice, channel=world.channel)
    reply = await _private_reply(world, None)
    assert "try again in" in reply.content


async def test_queue_lists_jobs_with_cancel_buttons_and_cancel_works(make_world: WorldFactory) -> None:
    world = await make_world(providers={"sketch": {"type": "sketch", "delay": 5.0, "size": 64}},
                             limits={"max_running_per_user": 1})
    fake = world.fake
    for prompt in ("first", "second"):
        await fake.slash("imagine", {"prompt": prompt, "count": 1}, user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: len(fake.state.interactions) == 2 and all(
        i.original_id and world.message(i.original_id).embeds for i in fake.state.interactions.values()))
    queue = await fake.slash("queue", user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: queue.original_id and world.message(queue.original_id).embeds)
    listing = world.message(queue.original_id or "")
    assert listing.flags & 64 and "second" in listing.embeds[0]["description"]
    buttons = [c["custom_id"] for row in listing.components for c in row["components"]]
    assert len(buttons) == 2 and all(b.startswith("ib:c:") for b in buttons)
    press = await fake.press(buttons[1], listing.id, user=world.alice)
    await fake.wait_until(lambda: press.original_id and "Cancelled" in world.message(press.original_id).content)
    cancel = await fake.slash("cancel", user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: cancel.original_id and "Cancelled" in world.message(cancel.original_id).content)


async def test_gallery_history_styles_settings_show(make_world: WorldFactory) -> None:
    world = await make_world(styles={"noir": {"prompt": "{prompt}, film noir", "description": "black and white"}})
    fake = world.fake
    made = []
    for prompt in ("apple", "pear"):
        inter = await fake.slash("imagine", {"prompt": prompt, "count": 1}, user=world.alice, channel=world.channel)
        await fake.wait_until(lambda inter=inter: inter.original_id is not None)
        made.append(await world.finished((await world.job_of(inter.original_id or "")).id))
    gallery = await _answer(world, "gallery")
    assert gallery.attachments and "pear" in gallery.embeds[0]["title"]
    link = [c for row in gallery.components for c in row["components"] if c.get("url")]
    assert link and link[0]["url"].startswith("https://gallery.example/c/discord/")
    nxt = next(c for row in gallery.components for c in row["components"] if c.get("label") == "Next ▶")
    turn = await fake.press(nxt["custom_id"], gallery.id, user=world.alice)
    await fake.wait_until(lambda: turn.responded and "apple" in world.message(gallery.id).embeds[0]["title"])
    history = await _answer(world, "history")
    again = [c["custom_id"] for row in history.components for c in row["components"] if "custom_id" in c]
    assert f"ib:a:{made[1].id}" in again
    styles = await _answer(world, "styles")
    assert styles.embeds[0]["fields"][0]["name"] == "noir"
    saved = await _answer(world, "settings", {"count": 2, "aspect": "16:9"})
    assert "Saved" in saved.embeds[0]["title"]
    refused = await _answer(world, "settings", {"scope": "server", "count": 1})
    assert "admin" in refused.content
    shown = await fake.slash("show", {"job": made[0].id}, user=world.bob, channel=world.channel)
    await fake.wait_until(lambda: shown.original_id and world.message(shown.original_id).attachments)
    assert not world.message(shown.original_id or "").flags & 64
    choices = await fake.autocomplete("imagine", {"prompt": "x", "style": "no"}, "style", user=world.alice,
                                      channel=world.channel)
    assert [c["value"] for c in choices] == ["noir"]
    assert fake.spec.violations == []


async def _answer(world: World, name: str, options: dict[str, object] | None = None) -> Message:
    inter = await world.fake.slash(name, options, user=world.alice, channel=world.channel)

    def answered() -> bool:
        msg = world.fake.state.messages.get(inter.original_id or "")
        return msg is not None and not msg.flags & 128
    await world.fake.wait_until(answered)
    return world.message(inter.original_id or "")


def _png() -> bytes:


    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 40, 40)).save(buf, "PNG")
    return buf.getvalue()


async def test_admins_set_server_policy_and_members_meet_it(world: World) -> None:
    fake = world.fake

    async def answer(user: str, name: str, options: dict[str, object]) -> Message:
        inter = await fake.slash(name, options, user=user, channel=world.channel)

        def answered() -> bool:
            msg = fake.state.messages.get(inter.original_id or "")
            return msg is not None and not msg.flags & 128
        await fake.wait_until(answered)
        return world.message(inter.original_id or "")

    refused = await answer(world.alice, "settings", {"scope": "server", "blocked_words": "gore"})
    assert "admin" in refused.content
    saved = await answer(world.admin, "settings", {"scope": "server", "blocked_words": "gore, hot dog",
                                                   "daily_images_per_user": 5})
    fields = {f["name"]: f["value"] for f in saved.embeds[0]["fields"]}
    assert fields["blocked_words"] == "gore, hot dog" and fields["daily_images_per_user"] == "5"
    await fake.slash("imagine", {"prompt": "a gore scene"}, user=world.alice, channel=world.channel)
    await fake.wait_until(lambda: any('"gore"' in m.content for m in world.ephemeral_replies()))
    [reply] = [m for m in world.ephemeral_replies() if '"gore"' in m.content]
    assert "(blocked word)" in reply.content and 'Try: "a scene"' in reply.content
    assert fake.spec.violations == []
