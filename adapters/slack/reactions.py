"""Reaction shortcuts on the bot's messages (``reaction_added``), old messages and restarts included.

``:repeat:`` reroll, ``:one:``-``:four:`` a variation of that image, ``:x:`` delete (the service
allows the author or a workspace admin), ``:star:`` favourite, ``:envelope:`` the full-size images
by DM. Reactions by the bot itself, and reactions on other people's messages, are ignored. The
reacting member acts as themselves, so their own limits apply; there is no ``response_url``, so
a refusal comes back as an ephemeral message in the channel.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.slack import actions
from adapters.slack.context import SlackContext
from adapters.slack.reply import via_ephemeral
from bot.errors import UserFacingError

log = logging.getLogger(__name__)

#: Reaction names (as Slack sends them, without skin tones) and their action and image number.
REACTIONS: dict[str, tuple[str, int | None]] = {
    "repeat": ("r", None),
    "one": ("v", 1),
    "two": ("v", 2),
    "three": ("v", 3),
    "four": ("v", 4),
    "x": ("d", None),
    "star": ("f", None),
    "envelope": ("m", None),
    "email": ("m", None),  # ✉️'s other name; Slack may send either
}


def action_for(reaction: str) -> tuple[str, int | None] | None:
    return REACTIONS.get(reaction.split("::", 1)[0])


async def on_reaction(ctx: SlackContext, body: dict[str, Any], event: dict[str, Any]) -> None:
    """Handle ``reaction_added`` (after the ack)."""
    user = str(event.get("user") or "")
    item = event.get("item") or {}
    action = action_for(str(event.get("reaction") or ""))
    if not user or user == ctx.bot_user_id or item.get("type") != "message" or action is None:
        return
    if event.get("item_user") not in (None, ctx.bot_user_id):
        return  # someone else's message
    channel, ts = str(item["channel"]), str(item["ts"])
    job_id = await ctx.index.job_id(channel, ts)
    if job_id is None:
        return
    origin = await ctx.identity.origin(team_id=str(body.get("team_id") or ctx.team_id), channel_id=channel,
                                       user_id=user)
    reply = via_ephemeral(ctx.client, channel, user)
    code, n = action
    try:
        if code in ("r", "v"):
            await actions.submit_flow(
                ctx, channel, reply, lambda refs: actions.new_job(ctx, code, job_id, n, origin, refs)
            )
            return
        if code == "m":
            text = await actions.dm_images(ctx, job_id, origin)
            if text is not None:
                await reply(text)
            return
        await actions.job_action(ctx, code, job_id, origin)
    except UserFacingError as exc:
        await reply(exc.message)
