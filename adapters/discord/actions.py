"""What buttons, context menus and reactions do, and how their answers are sent.

Handlers defer first; these helpers run after. A new job follows one flow (:func:`submit_flow`):
the deferred reply becomes a placeholder at once (so the card it turns into is an ordinary message
the surface edits with the bot token), the service queues the job, and a refusal replaces the reply
with an ephemeral explanation. Rules (ownership, limits) are the service's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from adapters.discord import media, render
from adapters.discord.components import picker_view
from adapters.discord.context import DiscordContext, context_of
from adapters.discord.identity import origin_from_interaction
from adapters.discord.surface import chunks
from bot import messages
from bot.errors import NotFound, UserFacingError
from bot.jobs import Job, JobStatus, Origin
from bot.request import JobKind

log = logging.getLogger(__name__)

Submit = Callable[[dict[str, str]], Awaitable[list[Job]]]
NEW_JOB_ACTIONS = frozenset("uvra")


# --- answering -------------------------------------------------------------------------------------
async def submit_flow(interaction: discord.Interaction, submit: Submit) -> None:
    """After a public defer: placeholder reply, queue the job(s), or explain privately why not."""
    try:
        reply = await interaction.edit_original_response(content=render.notice(messages.SUBMITTING))
        refs = {"channel": str(interaction.channel_id or reply.channel.id), "reply": str(reply.id)}
        jobs = await submit(refs)
    except UserFacingError as exc:
        await retract(interaction, exc.message)
        return
    if len(jobs) > 1:
        await interaction.edit_original_response(content=render.notice(messages.queued_batch(len(jobs))))


async def retract(interaction: discord.Interaction, text: str, *, view: discord.ui.View | None = None) -> None:
    """Replace a public deferred reply with a message only the user sees."""
    with contextlib.suppress(discord.HTTPException):
        await interaction.delete_original_response()
    if view is None:
        await interaction.followup.send(render.notice(text), ephemeral=True, allowed_mentions=render.NO_PINGS)
    else:
        await interaction.followup.send(
            render.notice(text), ephemeral=True, view=view, allowed_mentions=render.NO_PINGS
        )


async def say(interaction: discord.Interaction, text: str) -> None:
    """Answer an ephemerally deferred interaction."""
    await interaction.edit_original_response(content=render.notice(text), allowed_mentions=render.NO_PINGS)


# --- buttons ---------------------------------------------------------------------------------------
async def on_button(interaction: discord.Interaction, action: str, job_id: str, n: int | None) -> None:
    """A press of one of our persistent buttons (see :mod:`.components`)."""
    ctx = context_of(interaction.client)
    if action in NEW_JOB_ACTIONS:
        await interaction.response.defer(thinking=True)
        origin = origin_from_interaction(interaction)
        await submit_flow(interaction, lambda refs: new_job(ctx, action, job_id, n, origin, refs))
        return
    await interaction.response.defer(ephemeral=True, thinking=True)
    try:
        text = await job_action(ctx, action, job_id, origin_from_interaction(interaction))
    except UserFacingError as exc:
        text = exc.message
    await say(interaction, text)


async def new_job(
    ctx: DiscordContext, action: str, job_id: str, n: int | None, origin: Origin, refs: dict[str, str]
) -> list[Job]:
    """U (upscale image n), V (vary image n), reroll or run again, as the service's new job."""
    return [await ctx.service.follow_up(action, job_id, n, origin, refs=refs)]


async def job_action(ctx: DiscordContext, action: str, job_id: str, origin: Origin) -> str:
    """Cancel, delete or favourite; returns the sentence to show."""
    if action == "c":
        job = await ctx.service.cancel(job_id, origin)
        return messages.cancelled_job(job.id)
    if action == "d":
        job = await ctx.service.delete(job_id, origin)
        await remove_messages(ctx, job)
        return messages.DELETED
    await favourite_all(ctx, job_id, origin)
    return messages.FAVOURITED


# --- context menus ---------------------------------------------------------------------------------
async def on_context_menu(interaction: discord.Interaction, message: discord.Message, action: str) -> None:
    """"Vary this image" / "Upscale": straight away for one image, else a private 1-4 picker."""
    from adapters.discord.lookup import job_id_from_message

    ctx = context_of(interaction.client)
    origin = origin_from_interaction(interaction)
    job_id = job_id_from_message(message)
    try:
        if job_id is None:
            raise NotFound(messages.NOT_A_RESULT)
        job = await ctx.service.job(job_id, origin)
        if job.status is not JobStatus.SUCCEEDED:
            raise NotFound(messages.JOB_NOT_FINISHED)
    except UserFacingError as exc:
        await retract(interaction, exc.message)
        return
    count = image_count(job)
    if count == 1:
        await submit_flow(interaction, lambda refs: new_job(ctx, action, job.id, 1, origin, refs))
    else:
        prompt = render.shown(job.request.prompt, 1500)
        await retract(interaction, prompt, view=picker_view(action, job.id, count))


# --- shared job actions ----------------------------------------------------------------------------
def image_count(job: Job) -> int:
    return 1 if job.request.kind is JobKind.UPSCALE else job.request.count


async def favourite_all(ctx: DiscordContext, job_id: str, origin: Origin) -> None:
    await ctx.service.favourite_job(job_id, origin)


async def remove_messages(ctx: DiscordContext, job: Job) -> None:
    """Delete a deleted job's card and result messages (best effort: they may be gone already)."""
    refs = job.message_refs
    card = refs.get("card") or (refs.get("reply") if job.batch_id is None else None)
    targets = [(refs.get("result_channel"), refs.get("result")), (refs.get("channel"), card)]
    http = ctx.client.http
    for channel_id, message_id in targets:
        if channel_id and message_id:
            with contextlib.suppress(discord.NotFound, discord.Forbidden):
                await http.delete_message(int(channel_id), int(message_id))


async def dm_images(ctx: DiscordContext, job_id: str, origin: Origin, user: discord.Member | discord.User) -> str:
    """Send the job's full-size images and parameters to ``user`` privately."""
    job = await ctx.service.job(job_id, origin)
    if job.status is not JobStatus.SUCCEEDED:
        return messages.JOB_NOT_FINISHED
    delivery = await media.job_delivery(ctx.service, job, ctx.surface, origin)
    singles = [f for f in delivery.files if not f.filename.startswith(f"{job.id}-grid")] or delivery.files
    embed = render.result_embed(job, delivery.images, image_file=None, served_by=delivery.served_by)
    try:
        for i, chunk in enumerate(chunks(singles)):
            files = media.as_files(dataclasses.replace(delivery, files=chunk))
            extra: dict[str, Any] = {"embed": embed} if i == 0 else {}
            await user.send(files=files, allowed_mentions=render.NO_PINGS, **extra)
    except discord.Forbidden:
        return messages.DM_CLOSED
    return messages.DM_SENT
