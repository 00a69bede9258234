"""A job's images as Discord files, within the upload limit (for ``/show`` and the ✉️ DM).

New results arrive through the surface; this is for showing a stored job again. Flagged images
(NSFW, where allowed) go as spoilers: Discord names them ``SPOILER_...`` and blurs them until clicked.
"""

from __future__ import annotations

import io

import discord

from bot.jobs import Job, Origin
from bot.service import ImagineService
from bot.surface import Delivery, OutFile, Surface


async def job_delivery(service: ImagineService, job: Job, surface: Surface, origin: Origin) -> Delivery:
    """The job's stored images (and grid), fitted to ``surface``'s limits."""
    return await service.delivery_for(job.id, origin, surface)


def as_files(delivery: Delivery, *, singles_only: bool = False) -> list[discord.File]:
    files = delivery.files
    if singles_only and len(files) > 1:
        files = [f for f in files if not f.filename.startswith(f"{delivery.job.id}-grid")]
    return out_files(files, spoiler=delivery.flagged)


def out_files(files: list[OutFile], *, spoiler: bool) -> list[discord.File]:
    """Upload-ready files; ``spoiler`` hides them until clicked."""
    return [discord.File(io.BytesIO(f.data), filename=f.filename, spoiler=spoiler) for f in files]
