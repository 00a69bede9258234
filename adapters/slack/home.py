"""The App Home tab: the user's queue (with Cancel) and their recent images, and "Make an image".

Published with ``views.publish`` when the user opens the tab, and again after they press a
button on it (a button there has no ``response_url``, so the answer is a line at the top of the
refreshed tab). Image previews are shown when ``[web] public_url`` is set, since Slack fetches
them from the web server's ``/thumb/<sha>``.
"""

from __future__ import annotations

from typing import Any

from adapters.slack import blocks
from adapters.slack.browse import queue_blocks
from adapters.slack.buttons import OPEN_MODAL, button
from adapters.slack.context import SlackContext
from adapters.slack.identity import PLATFORM
from adapters.slack.reply import Reply
from adapters.slack.text import escape, shown
from bot.jobs import GalleryItem, Origin

RECENT_IMAGES = 6
#: Channels searched for the user's recent images, most recently active first.
RECENT_CHANNELS = 5


async def publish(ctx: SlackContext, team_id: str, user_id: str, *, notice: str | None = None) -> None:
    """Build and publish the user's home tab."""
    origin = Origin(platform=PLATFORM, server_id=team_id, channel_id="", user_id=user_id)
    layout: blocks.Blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "imaginebot"}},
    ]
    if notice:
        layout.append(blocks.section(f"_{escape(notice)}_", "notice"))
    make = blocks.section("Type `/imagine` and a prompt in any channel, or pick every option here.")
    make["accessory"] = button("Make an image", OPEN_MODAL, style="primary")
    layout += [make, {"type": "divider"}, blocks.section("*Your queue*")]
    layout += (await queue_blocks(ctx, origin))[1]
    layout += [{"type": "divider"}, blocks.section("*Your recent images*")]
    layout += _recent_blocks(ctx, await recent_images(ctx, team_id, user_id))
    await ctx.client.views_publish(user_id=user_id, view={"type": "home", "blocks": layout[:100]})


async def recent_images(ctx: SlackContext, team_id: str, user_id: str) -> list[GalleryItem]:
    """The user's newest images in this workspace, from the most recently active channels."""
    found: list[GalleryItem] = []
    for channel in (await ctx.service.channels(PLATFORM))[:RECENT_CHANNELS]:
        page = await ctx.service.gallery(PLATFORM, channel, user_id=user_id, limit=RECENT_IMAGES)
        found += [item for item in page.items if item.job.origin.server_id == team_id]
    found.sort(key=lambda item: (item.image.created_at, item.image.index), reverse=True)
    return found[:RECENT_IMAGES]


def _recent_blocks(ctx: SlackContext, items: list[GalleryItem]) -> blocks.Blocks:
    if not items:
        return [blocks.context("Nothing yet.")]
    previews = ctx.app.config.web.enabled and ctx.app.config.web.public_url is not None
    layout: blocks.Blocks = []
    for item in items:
        caption = (f"{shown(item.job.request.prompt, 300)} · image {item.image.index + 1} · "
                   f"job `{item.job.id}` · <#{item.job.origin.channel_id}>")
        if previews:
            layout.append({
                "type": "image", "image_url": f"{ctx.links.base_url}/thumb/{item.image.sha256}",
                "alt_text": shown(item.job.request.prompt, blocks.ALT_TEXT_LIMIT),
            })
        layout.append(blocks.context(caption))
    return layout


def home_reply(ctx: SlackContext, origin: Origin) -> Reply:
    """Answers to a button on the home tab: the tab again, with the answer on top."""

    async def reply(text: str, layout: blocks.Blocks | None = None, *, replace: bool = False) -> None:
        await publish(ctx, origin.server_id, origin.user_id, notice=text)

    return reply


async def on_home_opened(ctx: SlackContext, body: dict[str, Any], event: dict[str, Any]) -> None:
    if event.get("tab", "home") != "home":
        return
    await publish(ctx, str(body.get("team_id") or ctx.team_id), str(event["user"]))
