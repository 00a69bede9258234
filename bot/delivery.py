"""Preparing a finished job's files for a surface: a grid first, then each image, all within its limits."""

from __future__ import annotations

import asyncio

from bot import images as imaging
from bot.jobs import ImageRecord, Job
from bot.surface import Delivery, OutFile, Surface
from storage.base import BlobStore


async def build_delivery(
    job: Job,
    records: list[ImageRecord],
    blobs: BlobStore,
    surface: Surface,
    *,
    served_by: str | None = None,
    datas: list[bytes] | None = None,
) -> Delivery:
    """The grid (for two or more images) and every image, re-encoded to fit the upload limit.

    Pillow work runs in a thread. At most ``surface.max_files`` files: the grid is dropped
    before any single image is.
    """
    ordered = sorted(records, key=lambda r: r.index)
    if datas is None or len(datas) != len(ordered):
        datas = [await blobs.get(r.sha256) for r in ordered]
    budget = surface.upload_limit_bytes
    files = [await _fit(data, budget, f"{job.id}-{i + 1}") for i, data in enumerate(datas)]
    if len(datas) > 1 and len(files) < surface.max_files:
        grid = await asyncio.to_thread(_grid, datas, _grid_parameters(job, records))
        files.insert(0, await _fit(grid, budget, f"{job.id}-grid"))
    return Delivery(
        job=job, images=records, files=files[: surface.max_files], key=f"deliver:{job.id}", served_by=served_by,
        flagged=job.request.flagged,
    )


async def _fit(png: bytes, budget: int, stem: str) -> OutFile:
    if len(png) <= budget:  # the common case needs no Pillow work, so no thread
        return OutFile(filename=f"{stem}.png", data=png, mime="image/png")
    fitted, mime, name = await asyncio.to_thread(imaging.fit_to_budget, png, budget, filename_stem=stem)
    return OutFile(filename=name, data=fitted, mime=mime)


def _grid(datas: list[bytes], params: dict[str, str]) -> bytes:
    return imaging.embed_parameters(imaging.make_grid(datas), params)


def _grid_parameters(job: Job, records: list[ImageRecord]) -> dict[str, str]:
    """What the grid's PNG text says: the job's prompt and every cell's seed, in order."""
    request = job.request
    params = {
        "prompt": request.prompt,
        "job": job.id,
        "aspect": str(request.aspect_ratio),
        "seeds": ",".join("" if r.seed is None else str(r.seed) for r in sorted(records, key=lambda r: r.index)),
        "provider": records[0].provider if records else job.provider,
        "model": records[0].model if records else "",
    }
    if request.negative_prompt:
        params["negative_prompt"] = request.negative_prompt
    return params
