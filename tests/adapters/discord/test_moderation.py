"""Moderation on Discord: NSFW only in age-restricted channels, spoilered results, /audit for admins."""

from __future__ import annotations

from tests.adapters.discord.conftest import World
from tests.fakes.discord.state import Message


async def _answer(world: World, user: str, name: str, options: dict[str, object] | None = None) -> Message:
    inter = await world.fake.slash(name, options, user=user, channel=world.channel)

    def answered() -> bool:
        msg = world.fake.state.messages.get(inter.original_id or "")
        return msg is not None and not msg.flags & 128
    await world.fake.wait_until(answered)
    return world.message(inter.original_id or "")


async def test_nsfw_prompts_draw_only_in_age_restricted_channels_and_arrive_as_spoilers(world: World) -> None:
    fake = world.fake
    after_dark = fake.add_channel(world.guild, "after-dark", nsfw=True)
    await fake.slash("imagine", {"prompt": "a nude figure study", "count": 2}, user=world.alice,
                     channel=world.channel)
    await fake.wait_until(lambda: any("age-restricted" in m.content for m in world.ephemeral_replies()))
    [refusal] = [m for m in world.ephemeral_replies() if "age-restricted" in m.content]
    assert '"nude" is adult or graphic content' in refusal.content and 'Try: "a figure study"' in refusal.content

    inter = await fake.slash("imagine", {"prompt": "a nude figure study", "count": 2}, user=world.alice,
                             channel=after_dark)
    await fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    assert job.request.flagged
    [result] = [m for m in fake.messages_in(job.message_refs["result_channel"]) if m.attachments]
    names = [a.filename for a in result.attachments]
    assert names == [f"SPOILER_{job.id}-grid.png", f"SPOILER_{job.id}-1.png", f"SPOILER_{job.id}-2.png"]
    embed = result.embeds[0]
    assert "image" not in embed, "an embed's image would show the picture unblurred"
    assert any(f["name"] == "Sensitive" for f in embed["fields"])
    card = world.message(inter.original_id or "")
    assert all("image" not in e for e in card.embeds), "no unblurred previews on the card either"

    shown = await fake.slash("show", {"job": job.id}, user=world.bob, channel=after_dark)
    await fake.wait_until(lambda: shown.original_id and world.message(shown.original_id).attachments)
    assert all(a.filename.startswith("SPOILER_") for a in world.message(shown.original_id or "").attachments)
    assert fake.spec.violations == []


async def test_audit_is_for_admins_and_lists_refusals_overrides_and_changes(world: World) -> None:
    refused = await _answer(world, world.alice, "audit")
    assert refused.flags & 64 and "Only a server admin can read the moderation log" in refused.content

    saved = await _answer(world, world.admin, "settings", {"scope": "server", "blocked_patterns": r"g[o0]re{1,3}",
                                                           "nsfw": "block"})
    fields = {f["name"]: f["value"] for f in saved.embeds[0]["fields"]}
    assert fields["nsfw"] == "block" and fields["blocked_patterns"] == "g[o0]re{1,3}"
    bad = await _answer(world, world.admin, "settings", {"scope": "server", "blocked_patterns": "(a+)+$"})
    assert "unbounded repeat" in bad.content
    await world.fake.slash("imagine", {"prompt": "a g0re scene"}, user=world.alice, channel=world.channel)
    await world.fake.wait_until(lambda: any("blocked pattern" in m.content for m in world.ephemeral_replies()))

    log = await _answer(world, world.admin, "audit")
    assert log.flags & 64
    text = log.embeds[0]["description"]
    assert "refused · blocked pattern" in text and f"<@{world.alice}>" in text and "> a g0re scene" in text
    assert "settings changed · server settings" in text
    mine = await _answer(world, world.admin, "audit", {"user": f"<@{world.alice}>"})
    assert "settings changed" not in mine.embeds[0]["description"]
    assert world.fake.spec.violations == []
