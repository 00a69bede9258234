"""What the bot's messages look like: job cards, result embeds and short notices.

Everything a user typed is escaped (markdown and mentions) and cut to Discord's limits before it
is shown, and every message goes out with :data:`NO_PINGS`, so an echoed prompt never pings anyone.
Sentences come from :mod:`bot.messages`; this module only lays them out.
"""

from __future__ import annotations

import io

import discord

from bot import messages
from bot.jobs import ImageRecord, Job, JobStatus
from bot.surface import Card

#: Discord's message and embed limits (characters).
CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_VALUE_LIMIT = 1024
FOOTER_LIMIT = 2048
EMBED_TOTAL_LIMIT = 6000
THREAD_NAME_LIMIT = 100
#: Most files and bytes in one message (the whole request is capped at 25 MiB).
MAX_FILES_PER_MESSAGE = 10
MAX_REQUEST_BYTES = 25 * 1024 * 1024 - 64 * 1024

NO_PINGS = discord.AllowedMentions.none()

_COLOURS = {
    JobStatus.QUEUED: discord.Colour.light_grey(),
    JobStatus.RUNNING: discord.Colour.blurple(),
    JobStatus.SUCCEEDED: discord.Colour.green(),
    JobStatus.FAILED: discord.Colour.red(),
    JobStatus.CANCELLED: discord.Colour.dark_grey(),
}
_BAR_CELLS = 20


def escape(text: str) -> str:
    """``text`` shown literally: no markdown, no mentions."""
    return discord.utils.escape_mentions(discord.utils.escape_markdown(text))


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never ending inside an escape."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    trailing = len(cut) - len(cut.rstrip("\\"))
    if trailing % 2:
        cut = cut[:-1]
    return cut + "…"


def shown(text: str, limit: int) -> str:
    """User text escaped, then clipped to ``limit``."""
    return clip(escape(text), limit)


def thread_name(job: Job) -> str:
    """A thread's title: the prompt, plain (thread names are not markdown), at most 100 characters."""
    return clip(" ".join(job.request.prompt.split()), THREAD_NAME_LIMIT) or job.id


# --- job cards -----------------------------------------------------------------------------------
def status_text(card: Card) -> str:
    return messages.card_status(card)


def card_message(card: Card) -> tuple[discord.Embed, list[discord.File]]:
    """The card's embed and, while a preview exists, the preview as its image."""
    job = card.job
    embed = discord.Embed(title=shown(messages.job_title(job), TITLE_LIMIT), colour=_COLOURS[card.status])
    lines = [escape(status_text(card))]
    if card.status is JobStatus.RUNNING and card.fraction is not None:
        lines.append(progress_bar(card.fraction))
    embed.description = clip("\n".join(lines), DESCRIPTION_LIMIT)
    embed.set_author(name=clip(job.origin.user_name or job.origin.user_id, 256))
    embed.set_footer(text=f"job {job.id} · {job.provider}")
    files: list[discord.File] = []
    # An embed's image cannot be a spoiler, so a flagged job shows no preview at all.
    if card.preview is not None and not card.final and not card.flagged:
        name = f"preview.{_extension(card.preview)}"
        files.append(discord.File(io.BytesIO(card.preview), filename=name))
        embed.set_image(url=f"attachment://{name}")
    return embed, files


def progress_bar(fraction: float) -> str:
    filled = max(0, min(_BAR_CELLS, round(fraction * _BAR_CELLS)))
    return "`" + "█" * filled + "░" * (_BAR_CELLS - filled) + f"` {round(100 * fraction)} %"


# --- results ---------------------------------------------------------------------------------------
def result_embed(
    job: Job, images: list[ImageRecord], *, image_file: str | None, served_by: str | None
) -> discord.Embed:
    """The final message's embed: prompt, seed, provider and model, time and cost."""
    request = job.request
    embed = discord.Embed(title=shown(messages.job_title(job), TITLE_LIMIT), colour=_COLOURS[JobStatus.SUCCEEDED])
    embed.description = escape(messages.finished(messages.run_seconds(job), served_by, job.provider))
    if request.negative_prompt:
        embed.add_field(name="Negative", value=shown(request.negative_prompt, FIELD_VALUE_LIMIT), inline=False)
    seeds = ", ".join(str(r.seed) for r in sorted(images, key=lambda r: r.index) if r.seed is not None)
    embed.add_field(name="Seed", value=clip(seeds or "random", FIELD_VALUE_LIMIT))
    first = images[0] if images else None
    embed.add_field(name="Provider", value=escape(first.provider if first else job.provider))
    if first is not None and first.model:
        embed.add_field(name="Model", value=shown(first.model, FIELD_VALUE_LIMIT))
    took = messages.run_seconds(job)
    if took is not None:
        embed.add_field(name="Time", value=messages.duration(took))
    embed.add_field(name="Cost", value=f"${sum(r.cost_usd for r in images):.3f}")
    embed.set_author(name=clip(job.origin.user_name or job.origin.user_id, 256))
    embed.set_footer(text=f"job {job.id}")
    if request.flagged:
        # The images go as spoiler attachments; an embed image would show them unblurred.
        embed.add_field(name="Sensitive", value=messages.FLAGGED_NOTE, inline=False)
    elif image_file is not None:
        embed.set_image(url=f"attachment://{image_file}")
    return fit_embed(embed)


def fit_embed(embed: discord.Embed) -> discord.Embed:
    """Trim the description until the whole embed is within Discord's 6000 characters."""
    excess = len(embed) - EMBED_TOTAL_LIMIT
    if excess > 0 and embed.description:
        embed.description = clip(embed.description, max(1, len(embed.description) - excess))
    return embed


def notice(text: str) -> str:
    """A sentence for a plain message: escaped and within the content limit."""
    return clip(escape(text), CONTENT_LIMIT)




def _extension(data: bytes) -> str:
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    return "png"
