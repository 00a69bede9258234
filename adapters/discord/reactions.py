"""Reaction shortcuts on results, from raw gateway events (old messages and restarts included).

🔁 reroll, 1️⃣-4️⃣ a variation of that image, ❌ delete (the service allows the author or an admin),
⭐ favourite, ✉️ the full-size images by DM. Reactions by the bot itself, and reactions on other
authors' messages, are ignored. The reacting member acts as themselves: their own limits apply.
There is no interaction to answer privately, so a refusal is sent to the member by DM.
"""

from __future__ import annotations

import contextlib
import logging

import discord

from adapters.discord import actions, render
from adapters.discord.context import DiscordContext, context_of
from adapters.discord.identity import origin_from_reaction
from bot import messages
from bot.errors import UserFacingError
from bot.jobs import Origin

log = logging.getLogger(__name__)

_VS16 = "\ufe0f"  # emoji presentation selector: "✉" and "✉️" are the same reaction to a user
EMOJI_ACTIONS: dict[str, tuple[str, int | None]] = {
    "\U0001f501": ("r", None),  # 🔁
    "1\u20e3": ("v", 1),  # 1️⃣ without its selector
    "2\u20e3": ("v", 2),
    "3\u20e3": ("v", 3),
    "4\u20e3": ("v", 4),
    "\u274c": ("d", None),  # ❌
    "\u2b50": ("f", None),  # ⭐
    "\u2709": ("m", None),  # ✉️
}


def action_for(emoji: discord.PartialEmoji) -> tuple[str, int | None] | None:
    """The action of a unicode reaction, or None for any other emoji."""
    if emoji.id is not None or not emoji.name:
        return None
    return EMOJI_ACTIONS.get(emoji.name.replace(_VS16, ""))


async def on_reaction(client: discord.Client, payload: discord.RawReactionActionEvent) -> None:
    """Handle ``on_raw_reaction_add``."""
    ctx = context_of(client)
    me = client.user
    if not ctx.config.reactions or me is None or payload.user_id == me.id:
        return
    if payload.message_author_id is not None and payload.message_author_id != me.id:
        return
    action = action_for(payload.emoji)
    if action is None:
        return
    origin = origin_from_reaction(payload, await _channel(client, payload.channel_id))
    if origin is None or payload.member is None:
        return
    job_id = await ctx.index.job_id(payload.channel_id, payload.message_id)
    if job_id is None:
        return
    try:
        text = await _run(ctx, action, job_id, origin, payload)
    except UserFacingError as exc:
        text = exc.message
    if text is not None:
        await _tell(payload.member, text)


async def _run(
    ctx: DiscordContext, action: tuple[str, int | None], job_id: str, origin: Origin,
    payload: discord.RawReactionActionEvent,
) -> str | None:
    code, n = action
    refs = {"channel": str(payload.channel_id)}
    if code in ("r", "v"):
        await actions.new_job(ctx, code, job_id, n, origin, refs)
        return None  # the new card is the answer
    if code == "m":
        assert payload.member is not None
        text = await actions.dm_images(ctx, job_id, origin, payload.member)
        return None if text == messages.DM_SENT else text
    await actions.job_action(ctx, code, job_id, origin)
    return None


async def _channel(client: discord.Client, channel_id: int) -> discord.abc.GuildChannel | discord.Thread | None:
    """The channel or thread, from the cache or (for threads not cached) from the API."""
    channel = client.get_channel(channel_id)
    if isinstance(channel, discord.abc.GuildChannel | discord.Thread):
        return channel
    with contextlib.suppress(discord.HTTPException):
        fetched = await client.fetch_channel(channel_id)
        if isinstance(fetched, discord.abc.GuildChannel | discord.Thread):
            return fetched
    return None


async def _tell(member: discord.Member, text: str) -> None:
    try:
        await member.send(render.notice(text), allowed_mentions=render.NO_PINGS)
    except discord.HTTPException as exc:
        log.info("could not tell member %s about a reaction (%s)", member.id, exc.status)
