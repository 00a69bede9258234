"""Browsing commands: ``/gallery``, ``/history``, ``/queue`` and ``/settings``, answered privately.

Pages turn with "Next" and "First page" buttons that carry the storage cursor in their value
(see :mod:`.buttons`), so paging keeps no state; the buttons that act on jobs ("Run again",
"Cancel") are ordinary job buttons.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.slack import blocks
from adapters.slack.buttons import button, job_button, page_id, parse_page_id
from adapters.slack.commands import command_origin
from adapters.slack.context import SlackContext
from adapters.slack.reply import via_response_url
from adapters.slack.text import escape, plain, shown
from bot import messages
from bot.errors import InvalidRequest, UserFacingError
from bot.jobs import JobStatus, Origin
from bot.settings import SCOPES, SERVER_ONLY_KEYS, SETTING_KEYS

HISTORY_PAGE = 5
GALLERY_PAGE = 5
QUEUE_SHOWN = 20
#: The URL button that opens the web gallery (it needs only an ack).
GALLERY_LINK_ACTION = "ibl:gallery"

#: A plain sentence (the notification text) and the blocks shown.
Page = tuple[str, blocks.Blocks]
_PAIR = re.compile(r"(\w+)=(.*?)(?=\s+\w+=|$)")


# --- /gallery --------------------------------------------------------------------------------------
async def gallery(ctx: SlackContext, command: dict[str, Any]) -> None:
    reply = via_response_url(ctx.session, str(command["response_url"]))
    text, layout = await gallery_page(ctx, str(command["channel_id"]), None, 1)
    await reply(text, layout)


async def gallery_page(ctx: SlackContext, channel: str, cursor: str | None, number: int) -> Page:
    """A page of the channel's images, newest first, with the signed link to the web gallery."""
    found = await ctx.service.gallery("slack", channel, cursor=cursor, limit=GALLERY_PAGE)
    url = ctx.links.url("slack", channel, now=ctx.app.clock.now())
    link = button(messages.GALLERY_LINK, GALLERY_LINK_ACTION)
    link["url"] = url
    lines = [
        f"*{i}.* {shown(item.job.request.prompt, 300)} · image {item.image.index + 1} · seed "
        f"{'random' if item.image.seed is None else item.image.seed} · job `{item.job.id}`"
        for i, item in enumerate(found.items, (number - 1) * GALLERY_PAGE + 1)
    ]
    page = messages.page_of(number, found.next_cursor is not None)
    layout = [blocks.section("\n".join(lines) or escape(messages.NO_IMAGES)), blocks.context(page),
              blocks.actions([link, *_turns("g", number, found.next_cursor)])]
    return f"Gallery, {page}" if lines else messages.NO_IMAGES, layout


# --- /history --------------------------------------------------------------------------------------
async def history(ctx: SlackContext, command: dict[str, Any]) -> None:
    reply = via_response_url(ctx.session, str(command["response_url"]))
    text, layout = await history_page(ctx, str(command["channel_id"]), None, 1)
    await reply(text, layout)


async def history_page(ctx: SlackContext, channel: str, cursor: str | None, number: int) -> Page:
    """A page of the channel's latest prompts, each with "Run again"."""
    found = await ctx.service.history("slack", channel, cursor=cursor, limit=HISTORY_PAGE)
    if not found.items:
        return blocks.notice(messages.NO_HISTORY)
    layout: blocks.Blocks = []
    for i, job in enumerate(found.items, (number - 1) * HISTORY_PAGE + 1):
        row = blocks.section(f"*{i}.* {shown(job.request.prompt, 500)} · `{job.id}` · {job.status.value}")
        row["accessory"] = job_button("Run again", "a", job.id)
        layout.append(row)
    layout.append(blocks.context(messages.page_of(number, found.next_cursor is not None)))
    turns = _turns("h", number, found.next_cursor)
    if turns:
        layout.append(blocks.actions(turns))
    return f"History, {messages.page_of(number, found.next_cursor is not None)}", layout


def _turns(list_name: str, number: int, next_cursor: str | None) -> list[dict[str, Any]]:
    turns = []
    if number > 1:
        turns.append(button("⏮ First page", page_id(list_name, 1)))
    if next_cursor is not None:
        turns.append(button("Next ▶", page_id(list_name, number + 1), value=next_cursor))
    return turns


async def on_page(ctx: SlackContext, body: dict[str, Any]) -> None:
    """A "Next" or "First page" press: the page replaces the message it was on."""
    action = (body.get("actions") or [{}])[0]
    parsed = parse_page_id(str(action.get("action_id", "")))
    channel = (body.get("channel") or {}).get("id")
    url = body.get("response_url")
    if parsed is None or not channel or not url:
        return
    list_name, number = parsed
    cursor = str(action.get("value") or "") or None
    load = gallery_page if list_name == "g" else history_page
    text, layout = await load(ctx, str(channel), cursor if number > 1 else None, number)
    await via_response_url(ctx.session, str(url))(text, layout, replace=True)


# --- /queue ----------------------------------------------------------------------------------------
async def queue(ctx: SlackContext, command: dict[str, Any]) -> None:
    origin = await command_origin(ctx, command)
    reply = via_response_url(ctx.session, str(command["response_url"]))
    text, layout = await queue_blocks(ctx, origin)
    await reply(text, layout)


async def queue_blocks(ctx: SlackContext, origin: Origin) -> Page:
    """The user's waiting and running jobs, each with a Cancel button."""
    entries = await ctx.service.my_queue(origin)
    if not entries:
        return blocks.notice(messages.NOTHING_QUEUED)
    layout: blocks.Blocks = []
    for i, entry in enumerate(entries[:QUEUE_SHOWN], 1):
        state = (messages.running(None, "") if entry.job.status is JobStatus.RUNNING
                 else messages.queued(entry.position, entry.eta_seconds))
        row = blocks.section(f"*{i}.* {shown(entry.job.request.prompt, 300)} · `{entry.job.id}` · {escape(state)}")
        row["accessory"] = job_button("Cancel", "c", entry.job.id, style="danger")
        layout.append(row)
    return f"Your queue: {len(entries)}", layout


# --- /settings -------------------------------------------------------------------------------------
async def settings(ctx: SlackContext, command: dict[str, Any]) -> None:
    """``/settings [user|channel|server] [key=value ...]``: show or change saved defaults."""
    origin = await command_origin(ctx, command)
    reply = via_response_url(ctx.session, str(command["response_url"]))
    scope, _, rest = plain(str(command.get("text") or "")).strip().partition(" ")
    if scope not in SCOPES:
        scope, rest = "user", f"{scope} {rest}".strip()
    try:
        if rest.strip():
            saved = await ctx.service.set_settings(origin, parse_pairs(rest), scope)
            title = messages.settings_saved(scope)
        else:
            saved = await ctx.service.get_settings(origin, scope)
            title = f"{scope.capitalize()} settings. {messages.SETTINGS_HOW}"
    except UserFacingError as exc:
        await reply(exc.message)
        return
    values = saved.model_dump()
    lines = []
    for key in SETTING_KEYS:
        if scope != "server" and key in SERVER_ONLY_KEYS:
            continue
        value = values[key]
        text = "default" if value is None else ", ".join(value) if isinstance(value, list) else str(value)
        lines.append(f"`{key}` {shown(text or 'default', 300)}")
    layout = [blocks.section(escape(title)), blocks.section("\n".join(lines))]
    await reply(title, layout)


def parse_pairs(text: str) -> dict[str, Any]:
    """``key=value`` pairs (a value runs up to the next ``key=``) as a mapping.

    Anything that is not a pair gets the list of keys there are.
    """
    text = text.strip()
    values: dict[str, Any] = {}
    position = 0
    for match in _PAIR.finditer(text):
        if text[position:match.start()].strip():
            break
        values[match[1]] = match[2].strip().strip('"')
        position = match.end()
    if not values or text[position:].strip():
        word = (text[position:].split() or [text])[0]
        raise InvalidRequest(messages.unknown_setting(word, SETTING_KEYS))
    return values
