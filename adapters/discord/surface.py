"""The Discord surface: job cards edited with the bot token, results in a thread or the channel.

A card is the message the job's command was answered with (``reply`` in the job's message refs),
or a message this surface posts. Every edit goes through the bot token (``PATCH
/channels/{c}/messages/{m}``), paced by the core's throttle (:data:`DISCORD_THROTTLE`), so a card
can be finished hours later; the 15-minute interaction token is never used here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

import discord

from adapters.discord import media, render
from adapters.discord.components import card_view, result_view
from adapters.discord.lookup import MessageIndex
from bot.jobs import Job
from bot.request import JobKind
from bot.surface import DISCORD_THROTTLE, Card, Delivery, OutFile, ThrottlePolicy

log = logging.getLogger(__name__)

#: Reactions the bot puts under each result (the others work when users add them).
REROLL, FAVOURITE, DELETE, MAIL = "🔁", "⭐", "❌", "✉️"
NUMBERS = ("1️⃣", "2️⃣", "3️⃣", "4️⃣")
#: Thread errors after which results go to the channel instead.
THREAD_ALREADY_EXISTS = 160004
_AUTO_ARCHIVE_MINUTES: Literal[1440] = 1440


class DiscordSurface:
    """Implements :class:`bot.surface.Surface` for jobs whose origin platform is ``discord``."""

    name = "discord"
    max_files = 10

    def __init__(
        self,
        client: discord.Client,
        *,
        index: MessageIndex,
        thread_mode: str = "thread",
        reactions: bool = True,
        upload_limit_bytes: int = 10 * 1024 * 1024,
        throttle: ThrottlePolicy = DISCORD_THROTTLE,
    ) -> None:
        self._client = client
        self._index = index
        self._threads = thread_mode == "thread"
        self._reactions = reactions
        self.upload_limit_bytes = upload_limit_bytes
        self.throttle = throttle

    # --- Surface ----------------------------------------------------------------------------------
    async def show(self, card: Card) -> dict[str, str] | None:
        job = card.job
        channel_id = card_channel(job)
        channel = self._client.get_partial_messageable(channel_id)
        embed, files = render.card_message(card)
        view = card_view(card)
        message_id = card_message_id(job)
        if message_id is not None:
            try:
                await channel.get_partial_message(message_id).edit(
                    content=None, embed=embed, attachments=files, view=view, allowed_mentions=render.NO_PINGS
                )
                return None
            except discord.NotFound:
                log.info("job %s: its card was deleted; posting a new one", job.id)
                files = render.card_message(card)[1]  # the first attempt consumed the file buffers
        extra: dict[str, Any] = {"view": view} if view is not None else {}
        message = await channel.send(embed=embed, files=files, allowed_mentions=render.NO_PINGS, **extra)
        return {"channel": str(channel_id), "card": str(message.id)}

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        job = delivery.job
        if "result" in job.message_refs:
            return None  # posted before a restart; the core asks again only if it never heard back
        target, refs = await self._result_channel(job)
        channel = self._client.get_partial_messageable(target)
        first: discord.Message | None = None
        for chunk in chunks(delivery.files):
            files = media.out_files(chunk, spoiler=delivery.flagged)
            if first is None:
                embed = render.result_embed(
                    job, delivery.images, image_file=chunk[0].filename if chunk else None,
                    served_by=delivery.served_by,
                )
                view = result_view(job, len(delivery.images))
                first = await channel.send(embed=embed, files=files, view=view, allowed_mentions=render.NO_PINGS)
                self._index.remember(first.id, job.id)
            else:
                await channel.send(files=files, allowed_mentions=render.NO_PINGS)
        if first is None:
            return refs or None
        if self._reactions:
            await self._add_reactions(first, job, len(delivery.images))
        return {**refs, "result_channel": str(target), "result": str(first.id)}

    # --- internals ------------------------------------------------------------------------------
    async def _result_channel(self, job: Job) -> tuple[int, dict[str, str]]:
        """Where results go: a thread made from the card, or the card's own channel."""
        refs = job.message_refs
        channel_id = card_channel(job)
        if "thread" in refs:
            return int(refs["thread"]), {}
        message_id = card_message_id(job)
        if not self._threads or message_id is None or job.origin.thread_id is not None:
            return channel_id, {}
        try:
            thread = await self._client.http.start_thread_with_message(
                channel_id, message_id, name=render.thread_name(job), auto_archive_duration=_AUTO_ARCHIVE_MINUTES
            )
        except discord.HTTPException as exc:
            if exc.code == THREAD_ALREADY_EXISTS:  # a thread's id is its starter message's id
                return message_id, {"thread": str(message_id)}
            if exc.status not in (400, 403):
                raise
            # No thread permission, or a channel that cannot hold threads: use the channel.
            log.info("job %s: no thread in channel %s (%s); posting there", job.id, channel_id, exc.code)
            return channel_id, {}
        return int(thread["id"]), {"thread": str(thread["id"])}

    async def _add_reactions(self, message: discord.Message, job: Job, image_count: int) -> None:
        emojis = [REROLL]
        if job.request.kind is not JobKind.UPSCALE:
            emojis += NUMBERS[: min(image_count, 4)]
        emojis.append(FAVOURITE)
        for emoji in emojis:
            try:
                await message.add_reaction(emoji)
            except discord.HTTPException as exc:
                log.info("job %s: cannot add reactions (%s); the buttons still work", job.id, exc.status)
                return


def card_channel(job: Job) -> int:
    """The channel (or thread) holding the job's card."""
    refs = job.message_refs
    return int(refs.get("channel") or job.origin.thread_id or job.origin.channel_id)


def card_message_id(job: Job) -> int | None:
    """The card's message: one the surface posted, or the command's reply for a single job.

    Jobs of a batch (``{a, b}`` prompts) share the command's reply as a summary and get cards of
    their own, so no two jobs ever edit one message.
    """
    refs = job.message_refs
    value = refs.get("card") or (refs.get("reply") if job.batch_id is None else None)
    return int(value) if value else None


def chunks(files: list[OutFile]) -> Iterator[list[OutFile]]:
    """Files grouped into messages of at most 10 files and 25 MiB."""
    group: list[OutFile] = []
    size = 0
    for f in files:
        if group and (len(group) == render.MAX_FILES_PER_MESSAGE or size + len(f.data) > render.MAX_REQUEST_BYTES):
            yield group
            group, size = [], 0
        group.append(f)
        size += len(f.data)
    if group:
        yield group
