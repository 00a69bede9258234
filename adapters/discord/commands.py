"""The job commands: ``/imagine``, ``/cancel``, ``/show`` and the two message context menus.

Every handler defers as its first step (before any storage or provider call), then hands over to
the service. Typed options become the prompt flags the core parses, so styles, templates, defaults
and every validation message are the same as for a typed ``--flag``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import discord
from discord import app_commands

from adapters.discord import actions, media, render
from adapters.discord.components import result_view
from adapters.discord.context import context_of
from adapters.discord.identity import origin_from_interaction
from adapters.discord.surface import chunks
from bot import messages
from bot.errors import InvalidRequest, UserFacingError
from bot.images import check_user_image_size
from bot.jobs import Job, JobStatus
from bot.request import MAX_COUNT, MAX_PROMPT_CHARS, MAX_SEED


@app_commands.command(name="imagine", description="Make images from a prompt")
@app_commands.describe(
    prompt="What to draw; flags like --ar 16:9 work here too",
    negative="What to leave out",
    aspect="Aspect ratio, like 16:9",
    count="How many images",
    seed="A fixed seed, for repeatable images",
    style="A style preset",
    provider="Which image service draws it",
    image="A picture to start from (image-to-image)",
)
async def imagine(
    interaction: discord.Interaction,
    prompt: app_commands.Range[str, 1, MAX_PROMPT_CHARS],
    negative: app_commands.Range[str, 1, MAX_PROMPT_CHARS] | None = None,
    aspect: app_commands.Range[str, 1, 16] | None = None,
    count: app_commands.Range[int, 1, MAX_COUNT] | None = None,
    seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
    style: app_commands.Range[str, 1, 64] | None = None,
    provider: app_commands.Range[str, 1, 64] | None = None,
    image: discord.Attachment | None = None,
) -> None:
    await interaction.response.defer(thinking=True)
    ctx = context_of(interaction.client)
    origin = origin_from_interaction(interaction)
    text = prompt_with_options(
        prompt, negative=negative, aspect=aspect, count=count, seed=seed, style=style, provider=provider
    )

    async def submit(refs: dict[str, str]) -> list[Job]:
        data = await read_attachment(image) if image is not None else None
        return await ctx.service.submit(text, origin, attachment=data, refs=refs)

    await actions.submit_flow(interaction, submit)


def prompt_with_options(prompt: str, **options: str | int | None) -> str:
    """The prompt with typed options as the flags the core parses (``--no``, ``--ar`` ...)."""
    flags = {"negative": "--no", "aspect": "--ar", "count": "--n", "seed": "--seed",
             "style": "--style", "provider": "--provider"}
    parts = [prompt]
    for name, value in options.items():
        if value is not None and value != "":
            parts += [flags[name], str(value)]
    return " ".join(parts)


async def read_attachment(attachment: discord.Attachment) -> bytes:
    """The attachment's bytes; one larger than we accept is refused without downloading it."""
    check_user_image_size(attachment.size)
    try:
        return await attachment.read()
    except (discord.HTTPException, discord.NotFound) as exc:
        raise InvalidRequest(messages.ATTACHMENT_UNREADABLE) from exc


@imagine.autocomplete("style")
async def style_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    ctx = context_of(interaction.client)
    styles = await ctx.service.styles(origin_from_interaction(interaction))
    wanted = current.lower()
    return [
        app_commands.Choice(name=render.clip(f"{name} · {description}" if description else name, 100), value=name)
        for name, description in styles if wanted in name.lower()
    ][:25]


@imagine.autocomplete("provider")
async def provider_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[str]]:
    ctx = context_of(interaction.client)
    wanted = current.lower()
    return [app_commands.Choice(name=n, value=n) for n in ctx.service.providers if wanted in n.lower()][:25]


@app_commands.command(name="cancel", description="Cancel a job (your newest one when no id is given)")
@app_commands.describe(job="The job id (shown under each card)")
async def cancel(interaction: discord.Interaction, job: app_commands.Range[str, 1, 32] | None = None) -> None:
    await interaction.response.defer(ephemeral=True, thinking=True)
    ctx = context_of(interaction.client)
    origin = origin_from_interaction(interaction)
    try:
        if job is None:
            entries = await ctx.service.my_queue(origin)
            if not entries:
                raise InvalidRequest(messages.NOTHING_QUEUED)
            job = max(entries, key=lambda e: (e.job.created_at, e.job.id)).job.id
        text = await actions.job_action(ctx, "c", job.strip().lower(), origin)
    except UserFacingError as exc:
        text = exc.message
    await actions.say(interaction, text)


@app_commands.command(name="show", description="Bring a finished job back here, with its buttons")
@app_commands.describe(job="The job id (shown under each card)")
async def show(interaction: discord.Interaction, job: app_commands.Range[str, 1, 32]) -> None:
    await interaction.response.defer(thinking=True)
    ctx = context_of(interaction.client)
    try:
        found = await ctx.service.job(job.strip().lower(), origin_from_interaction(interaction))
        if found.status is not JobStatus.SUCCEEDED:
            raise InvalidRequest(messages.JOB_NOT_FINISHED)
        delivery = await media.job_delivery(ctx.service, found, ctx.surface, origin_from_interaction(interaction))
    except UserFacingError as exc:
        await actions.retract(interaction, exc.message)
        return
    first = next(chunks(delivery.files), [])
    embed = render.result_embed(found, delivery.images, image_file=first[0].filename if first else None,
                                served_by=None)
    files = media.as_files(dataclasses.replace(delivery, files=first))
    message = await interaction.edit_original_response(
        content=None, embed=embed, attachments=files, view=result_view(found, len(delivery.images)),
        allowed_mentions=render.NO_PINGS,
    )
    ctx.index.remember(message.id, found.id)


@app_commands.context_menu(name="Vary this image")
async def vary_menu(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.defer(thinking=True)
    await actions.on_context_menu(interaction, message, "v")


@app_commands.context_menu(name="Upscale")
async def upscale_menu(interaction: discord.Interaction, message: discord.Message) -> None:
    await interaction.response.defer(thinking=True)
    await actions.on_context_menu(interaction, message, "u")


JOB_COMMANDS: tuple[app_commands.Command[Any, ..., None] | app_commands.ContextMenu, ...] = (
    imagine, cancel, show, vary_menu, upscale_menu,
)
