"""Jobs, cards, images and gallery items as the JSON the pages render.

Status sentences come from :mod:`bot.messages`, so the web words a job's state exactly as the
chat platforms do.
"""

from __future__ import annotations

import base64
from typing import Any

from bot import messages
from bot.jobs import GalleryItem, ImageRecord, Job, JobStatus
from bot.prompt import format_request
from bot.request import JobKind
from bot.surface import Card

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> str | None:
    """The image type ``data`` starts with (PNG, JPEG, WEBP, GIF), or None."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def job_json(job: Job) -> dict[str, Any]:
    request = job.request
    return {
        "id": job.id,
        "channel": job.origin.channel_id,
        "user": job.origin.user_name or job.origin.user_id,
        "user_id": job.origin.user_id,
        "prompt": request.prompt,
        "negative_prompt": request.negative_prompt,
        "kind": request.kind.value,
        "source_job_id": request.source_job_id,
        "source_index": request.source_image_index,
        "count": 1 if request.kind is JobKind.UPSCALE else request.count,
        "aspect": str(request.aspect_ratio),
        "seed": request.seed,
        "style": request.style,
        "provider": job.provider,
        "status": job.status.value,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "error": job.error,
        # Moderation flagged it (NSFW, where allowed): the pages blur its images until clicked.
        "flagged": request.flagged,
        # Canonical text that runs the same request again (variations and upscales become prompts).
        "command": format_request(request) if request.kind is JobKind.GENERATE else request.prompt,
    }


def image_json(record: ImageRecord) -> dict[str, Any]:
    return {
        "index": record.index,
        "sha256": record.sha256,
        "url": f"/img/{record.sha256}",
        "thumb": f"/thumb/{record.sha256}",
        "width": record.width,
        "height": record.height,
        "mime": record.mime,
        "seed": record.seed,
        "provider": record.provider,
        "model": record.model,
        "revised_prompt": record.revised_prompt,
        "cost_usd": record.cost_usd,
        "size_bytes": record.size_bytes,
        "created_at": record.created_at,
    }


def gallery_item_json(item: GalleryItem) -> dict[str, Any]:
    return {"job": job_json(item.job), "image": image_json(item.image), "favourites": item.favourite_count}


def status_text(
    job: Job,
    status: JobStatus,
    *,
    position: int | None = None,
    eta_seconds: float | None = None,
    fraction: float | None = None,
    step_text: str = "",
    error: str | None = None,
    served_by: str | None = None,
) -> str:
    if status is JobStatus.QUEUED:
        return messages.queued(position, eta_seconds)
    if status is JobStatus.RUNNING:
        return messages.running(fraction, step_text)
    if status is JobStatus.SUCCEEDED:
        took = None
        if job.started_at is not None and job.finished_at is not None:
            took = job.finished_at - job.started_at
        return messages.finished(took, served_by, job.provider)
    if status is JobStatus.CANCELLED:
        return error or messages.CANCELLED
    return messages.failed(error or job.error or "unknown error")


def card_json(card: Card) -> dict[str, Any]:
    """A live card frame: what the job's card shows now."""
    fraction = 1.0 if card.status is JobStatus.SUCCEEDED else card.fraction
    return {
        "type": "card",
        "job": job_json(card.job),
        "status": card.status.value,
        "final": card.final,
        "text": status_text(
            card.job, card.status, position=card.position, eta_seconds=card.eta_seconds,
            fraction=card.fraction, step_text=card.step_text, error=card.error, served_by=card.served_by,
        ),
        "position": card.position,
        "eta_seconds": card.eta_seconds,
        "fraction": fraction,
        "preview": _data_url(card.preview),
        "error": card.error,
    }


def stored_card_json(job: Job, images: list[ImageRecord]) -> dict[str, Any]:
    """A card rebuilt from storage, for a channel opened after its jobs ran."""
    return {
        "type": "card",
        "job": job_json(job),
        "status": job.status.value,
        "final": job.status.finished,
        "text": status_text(job, job.status, error=job.error),
        "position": None,
        "eta_seconds": None,
        "fraction": 1.0 if job.status is JobStatus.SUCCEEDED else None,
        "preview": None,
        "error": job.error,
        "images": [image_json(r) for r in sorted(images, key=lambda r: r.index)],
    }


def images_event(job: Job, images: list[ImageRecord]) -> dict[str, Any]:
    return {
        "type": "images",
        "job_id": job.id,
        "job": job_json(job),
        "images": [image_json(r) for r in sorted(images, key=lambda r: r.index)],
    }


def _data_url(preview: bytes | None) -> str | None:
    if preview is None:
        return None
    mime = sniff_image(preview)
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(preview).decode('ascii')}"
