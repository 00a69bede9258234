"""Browsing commands: ``/gallery``, ``/history``, ``/queue``, ``/styles``, ``/settings`` and ``/audit``.

Answers are private (ephemeral). Pages turn with Previous/Next buttons held in memory for a few
minutes (an ephemeral message is the asker's alone and cannot outlive its interaction anyway);
the buttons that act on jobs ("Run again", "Cancel") are persistent ones from :mod:`.components`.
"""

from __future__ import annotations

import asyncio
import io
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import discord
from discord import app_commands

from adapters.discord import actions, render
from adapters.discord.components import JobButton
from adapters.discord.context import DiscordContext, context_of
from adapters.discord.identity import origin_from_interaction
from bot import images as imaging
from bot import messages
from bot.errors import UserFacingError
from bot.jobs import JobStatus
from bot.moderation import AuditEntry
from bot.request import MAX_COUNT
from bot.settings import CHANNEL_POLICY_KEYS, SERVER_ONLY_KEYS, SETTING_KEYS

PAGER_TIMEOUT_SECONDS = 600.0
HISTORY_PAGE = 5
AUDIT_PAGE = 8
GALLERY_PREVIEW_SIDE = 768


@dataclass
class Page:
    """One page of a pager: its embed, files, extra buttons and the cursor of the next page."""

    embed: discord.Embed
    next_cursor: str | None
    files: list[discord.File] = field(default_factory=list)
    items: list[discord.ui.Item[Any]] = field(default_factory=list)


Loader = Callable[[str | None, int], Awaitable[Page]]


class Pager(discord.ui.View):
    """Previous/Next over cursor pages; remembers the cursors of the pages it has shown."""

    def __init__(self, load: Loader, owner_id: int, extra: list[discord.ui.Item[Any]] | None = None) -> None:
        super().__init__(timeout=PAGER_TIMEOUT_SECONDS)
        self._load, self._owner_id, self._extra = load, owner_id, extra or []
        self._cursors: list[str | None] = [None]
        self._next: str | None = None

    async def first(self) -> Page:
        page = await self._load(None, 1)
        self._arrange(page)
        return page

    async def turn(self, interaction: discord.Interaction, step: int) -> None:
        await interaction.response.defer()
        if step > 0 and self._next is not None:
            self._cursors.append(self._next)
        elif step < 0 and len(self._cursors) > 1:
            self._cursors.pop()
        page = await self._load(self._cursors[-1], len(self._cursors))
        self._arrange(page)
        await interaction.edit_original_response(embed=page.embed, attachments=page.files, view=self)

    def _arrange(self, page: Page) -> None:
        self._next = page.next_cursor
        self.clear_items()
        previous = _Turn(self, -1, "◀ Previous", disabled=len(self._cursors) == 1)
        following = _Turn(self, +1, "Next ▶", disabled=page.next_cursor is None)
        for item in [*page.items, previous, following, *self._extra]:
            self.add_item(item)

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self._owner_id


class _Turn(discord.ui.Button[Pager]):
    def __init__(self, pager: Pager, step: int, label: str, *, disabled: bool) -> None:
        super().__init__(label=label, disabled=disabled, row=4)
        self._pager, self._step = pager, step

    async def callback(self, interaction: discord.Interaction) -> None:
        await self._pager.turn(interaction, self._step)


# --- /gallery --------------------------------------------------------------------------------------
@app_commands.command(name="gallery", description="This channel's images, with a link to the web gallery")
async def gallery(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    origin = origin_from_interaction(interaction)
    url = ctx.links.url(origin.platform, origin.channel_id, now=ctx.app.clock.now())
    link = discord.ui.Button[Pager](label=messages.GALLERY_LINK, url=url, row=4)

    async def load(cursor: str | None, number: int) -> Page:
        return await gallery_page(ctx, origin.channel_id, cursor, number)

    pager = Pager(load, interaction.user.id, [link])
    page = await pager.first()
    await interaction.edit_original_response(embed=page.embed, attachments=page.files, view=pager)


async def gallery_page(ctx: DiscordContext, channel_id: str, cursor: str | None, number: int) -> Page:
    found = await ctx.service.gallery("discord", channel_id, cursor=cursor, limit=1)
    if not found.items:
        return Page(discord.Embed(description=messages.NO_IMAGES), None)
    item = found.items[0]
    data = await ctx.service.image_bytes(item.image.sha256)
    preview = await asyncio.to_thread(imaging.thumbnail, data, GALLERY_PREVIEW_SIDE)
    embed = discord.Embed(title=render.shown(item.job.request.prompt, render.TITLE_LIMIT))
    embed.set_author(name=render.clip(item.job.origin.user_name or item.job.origin.user_id, 256))
    flagged = item.job.request.flagged
    if flagged:  # a spoiler attachment instead of the embed's image, which cannot be hidden
        embed.description = messages.FLAGGED_NOTE
    else:
        embed.set_image(url="attachment://gallery.webp")
    seed = "random" if item.image.seed is None else str(item.image.seed)
    embed.set_footer(text=f"job {item.job.id} · image {item.image.index + 1} · seed {seed} · "
                          f"{messages.page_of(number, found.next_cursor is not None)}")
    return Page(embed, found.next_cursor, [discord.File(io.BytesIO(preview), filename="gallery.webp", spoiler=flagged)])


# --- /history --------------------------------------------------------------------------------------
@app_commands.command(name="history", description="The latest prompts in this channel, to run again")
async def history(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    channel_id = origin_from_interaction(interaction).channel_id

    async def load(cursor: str | None, number: int) -> Page:
        found = await ctx.service.history("discord", channel_id, cursor=cursor, limit=HISTORY_PAGE)
        lines = [
            f"**{i}.** {render.shown(job.request.prompt, 300)} · `{job.id}` · {job.status.value}"
            for i, job in enumerate(found.items, 1)
        ]
        embed = discord.Embed(title="History", description="\n".join(lines) or messages.NO_HISTORY)
        embed.set_footer(text=messages.page_of(number, found.next_cursor is not None))
        again = [JobButton("a", job.id, label=f"Run again {i}") for i, job in enumerate(found.items, 1)]
        return Page(render.fit_embed(embed), found.next_cursor, items=list(again))

    pager = Pager(load, interaction.user.id)
    page = await pager.first()
    await interaction.edit_original_response(embed=page.embed, view=pager)


# --- /queue, /styles -------------------------------------------------------------------------------
@app_commands.command(name="queue", description="Your waiting and running jobs")
async def queue(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    entries = await ctx.service.my_queue(origin_from_interaction(interaction))
    if not entries:
        await actions.say(interaction, messages.NOTHING_QUEUED)
        return
    lines, view = [], discord.ui.View(timeout=None)
    for i, entry in enumerate(entries[:20], 1):
        state = (messages.running(None, "") if entry.job.status is JobStatus.RUNNING
                 else messages.queued(entry.position, entry.eta_seconds))
        lines.append(f"**{i}.** {render.shown(entry.job.request.prompt, 200)} · `{entry.job.id}` · {state}")
        view.add_item(JobButton("c", entry.job.id, label=f"Cancel {i}"))
    embed = render.fit_embed(discord.Embed(title="Your queue", description="\n".join(lines)))
    await interaction.edit_original_response(embed=embed, view=view)


@app_commands.command(name="styles", description="The style presets you can use")
async def styles(interaction: discord.Interaction) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    listed = await ctx.service.styles(origin_from_interaction(interaction))
    if not listed:
        await actions.say(interaction, messages.NO_STYLES)
        return
    embed = discord.Embed(title="Styles (pick one with the style option or --style NAME)")
    for name, description in listed[:25]:
        embed.add_field(name=render.clip(name, 256), value=render.shown(description or "-", 1024), inline=False)
    await interaction.edit_original_response(embed=render.fit_embed(embed))


# --- /settings -------------------------------------------------------------------------------------
@app_commands.command(name="settings", description="Show or change saved defaults (server ones: admins)")
@app_commands.describe(
    scope="Whose defaults: yours, this channel's or the server's", provider="Default provider",
    count="Default number of images", aspect="Default aspect ratio, like 16:9", quality="Default quality",
    allowed_channels="Server: channel ids where /imagine works, comma-separated ('default': everywhere)",
    blocked_words="Server: words or phrases prompts may not contain, comma-separated",
    blocked_patterns="Server: regular expressions prompts may not match, space-separated (\\s for a space)",
    allowed_words="Server: words or phrases no rule blocks (like scunthorpe), comma-separated",
    nsfw="Channel or server: NSFW prompts allowed only in age-restricted channels, or blocked",
    nsfw_words="Server: more words that count as NSFW, comma-separated",
    moderation="Server: also ask the provider's moderation check before drawing",
    per_user_per_minute="Server: requests per member per minute",
    daily_images_per_user="Server: images per member per day (0: no cap)",
    daily_images_per_server="Server: images per day for the whole server (0: no cap)",
    daily_budget_usd="Server: estimated spend per day in US dollars (0: no budget)",
)
async def settings(
    interaction: discord.Interaction,
    scope: Literal["user", "channel", "server"] = "user",
    provider: app_commands.Range[str, 1, 64] | None = None,
    count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
    aspect: app_commands.Range[str, 1, 16] | None = None,
    quality: Literal["low", "medium", "high", "default"] | None = None,
    allowed_channels: app_commands.Range[str, 1, 1000] | None = None,
    blocked_words: app_commands.Range[str, 1, 1000] | None = None,
    blocked_patterns: app_commands.Range[str, 1, 1000] | None = None,
    allowed_words: app_commands.Range[str, 1, 1000] | None = None,
    nsfw: Literal["nsfw_channels", "block", "default"] | None = None,
    nsfw_words: app_commands.Range[str, 1, 1000] | None = None,
    moderation: Literal["off", "provider", "default"] | None = None,
    per_user_per_minute: app_commands.Range[float, 0.1, 1000.0] | None = None,
    daily_images_per_user: app_commands.Range[int, 0, 1_000_000] | None = None,
    daily_images_per_server: app_commands.Range[int, 0, 10_000_000] | None = None,
    daily_budget_usd: app_commands.Range[float, 0.0, 100_000.0] | None = None,
) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    origin = origin_from_interaction(interaction)
    given = {
        "provider": provider, "count": count, "aspect": aspect, "quality": quality,
        "allowed_channels": allowed_channels, "blocked_words": blocked_words, "blocked_patterns": blocked_patterns,
        "allowed_words": allowed_words, "nsfw": nsfw, "nsfw_words": nsfw_words, "moderation": moderation,
        "per_user_per_minute": per_user_per_minute, "daily_images_per_user": daily_images_per_user,
        "daily_images_per_server": daily_images_per_server, "daily_budget_usd_per_server": daily_budget_usd,
    }
    values = {k: (None if v == "default" else v) for k, v in given.items() if v is not None}
    try:
        if values:
            saved = await ctx.service.set_settings(origin, values, scope)
            title = messages.settings_saved(scope)
        else:
            saved = await ctx.service.get_settings(origin, scope)
            title = f"{scope.capitalize()} settings"
    except UserFacingError as exc:
        await actions.say(interaction, exc.message)
        return
    shown = saved.model_dump()
    embed = discord.Embed(title=title)
    for key in SETTING_KEYS:
        if (scope != "server" and key in SERVER_ONLY_KEYS) or (scope == "user" and key in CHANNEL_POLICY_KEYS):
            continue
        value = shown[key]
        joiner = " " if key == "blocked_patterns" else ", "
        text = "default" if value is None else joiner.join(value) if isinstance(value, list) else str(value)
        embed.add_field(name=key, value=render.shown(text or "default", 1024))
    await interaction.edit_original_response(embed=embed)


@settings.autocomplete("provider")
async def settings_provider_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    names = ["default", *context_of(interaction.client).service.providers]
    return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]


# --- /audit ----------------------------------------------------------------------------------------
@app_commands.command(name="audit", description="Admins: the moderation log (refusals, overrides, flags, changes)")
@app_commands.describe(user="Only this member's entries: their id or @mention")
async def audit(interaction: discord.Interaction, user: app_commands.Range[str, 1, 40] | None = None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    origin = origin_from_interaction(interaction)
    user_id = re.sub(r"\D", "", user or "") or None

    async def load(cursor: str | None, number: int) -> Page:
        found = await ctx.service.audit_log(origin, cursor=cursor, limit=AUDIT_PAGE, user_id=user_id)
        embed = discord.Embed(title="Moderation log", description="\n".join(map(audit_text, found.items)) or
                              messages.NO_AUDIT)
        embed.set_footer(text=messages.page_of(number, found.next_cursor is not None))
        return Page(render.fit_embed(embed), found.next_cursor)

    pager = Pager(load, interaction.user.id)
    try:
        page = await pager.first()
    except UserFacingError as exc:
        await actions.say(interaction, exc.message)
        return
    await interaction.edit_original_response(embed=page.embed, view=pager)


def audit_text(entry: AuditEntry) -> str:
    """One entry: when (in the reader's time zone), what, who, where, then the prompt quoted."""
    what = render.escape(messages.audit_line(entry.action.value, entry.rule, entry.term))
    job = f" · `{entry.job_id}`" if entry.job_id else ""
    line = f"<t:{int(entry.at)}:f> · **{what}** · <@{entry.user_id}> · <#{entry.channel_id}>{job}"
    return line + (f"\n> {render.shown(entry.prompt, 200)}" if entry.prompt else "")


BROWSE_COMMANDS: tuple[app_commands.Command[Any, ..., None], ...] = (
    gallery, history, queue, styles, settings, audit,
)
