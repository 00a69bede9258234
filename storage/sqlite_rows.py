"""Row <-> record conversion, page cursors and safe full-text queries for the SQLite store.

Rows are plain tuples (no ``sqlite3.Row``): loading ten thousand jobs at start-up is on the
restart path, and positional unpacking is the cheapest conversion there is.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from bot.errors import InvalidRequest
from bot.jobs import ImageRecord, Job, JobStatus, Origin
from bot.request import GenerationRequest

#: The job columns every job query selects, in :func:`job_from_row` order (table alias ``j``).
JOB_COLUMNS = (
    "j.id, j.platform, j.server_id, j.channel_id, j.thread_id, j.user_id, j.user_name, j.roles, "
    "j.is_admin, j.nsfw_channel, j.request, j.provider, j.status, j.attempts, j.created_at, "
    "j.started_at, j.finished_at, j.delivered_at, j.error, j.message_refs, j.batch_id, j.deleted"
)
JOB_WIDTH = JOB_COLUMNS.count(",") + 1

INSERT_JOB = (
    "INSERT INTO jobs (id, platform, server_id, channel_id, thread_id, user_id, user_name, roles, "
    "is_admin, nsfw_channel, request, provider, status, attempts, created_at, started_at, finished_at, "
    "delivered_at, error, message_refs, batch_id, deleted) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)

#: The image columns, in :func:`image_from_row` order (table alias ``i``).
IMAGE_COLUMNS = (
    "i.job_id, i.idx, i.sha256, i.width, i.height, i.size_bytes, i.mime, i.seed, i.provider, "
    "i.model, i.revised_prompt, i.cost_usd, i.created_at"
)
IMAGE_WIDTH = IMAGE_COLUMNS.count(",") + 1

INSERT_IMAGE = (
    "INSERT INTO images (job_id, idx, sha256, width, height, size_bytes, mime, seed, provider, model, "
    "revised_prompt, cost_usd, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def job_to_row(job: Job) -> tuple[Any, ...]:
    o = job.origin
    return (
        job.id, o.platform, o.server_id, o.channel_id, o.thread_id, o.user_id, o.user_name,
        json.dumps(sorted(o.roles)), int(o.is_admin), int(o.nsfw_channel),
        job.request.model_dump_json(), job.provider, job.status.value, job.attempts, job.created_at,
        job.started_at, job.finished_at, job.delivered_at, job.error, json.dumps(job.message_refs),
        job.batch_id, int(job.deleted),
    )


def job_from_row(row: Sequence[Any]) -> Job:
    (
        job_id, platform, server_id, channel_id, thread_id, user_id, user_name, roles, is_admin,
        nsfw_channel, request, provider, status, attempts, created_at, started_at, finished_at,
        delivered_at, error, message_refs, batch_id, deleted,
    ) = row[:JOB_WIDTH]
    origin = Origin(
        platform=platform,
        server_id=server_id,
        channel_id=channel_id,
        user_id=user_id,
        user_name=user_name,
        thread_id=thread_id,
        roles=frozenset(json.loads(roles)),
        is_admin=bool(is_admin),
        nsfw_channel=bool(nsfw_channel),
    )
    return Job(
        id=job_id,
        origin=origin,
        request=GenerationRequest.model_validate_json(request),
        provider=provider,
        status=JobStatus(status),
        attempts=attempts,
        created_at=created_at,
        started_at=started_at,
        finished_at=finished_at,
        error=error,
        message_refs=json.loads(message_refs),
        delivered_at=delivered_at,
        batch_id=batch_id,
        deleted=bool(deleted),
    )


def image_to_row(image: ImageRecord) -> tuple[Any, ...]:
    return (
        image.job_id, image.index, image.sha256, image.width, image.height, image.size_bytes, image.mime,
        image.seed, image.provider, image.model, image.revised_prompt, image.cost_usd, image.created_at,
    )


def image_from_row(row: Sequence[Any]) -> ImageRecord:
    (
        job_id, index, sha256, width, height, size_bytes, mime, seed, provider, model, revised_prompt,
        cost_usd, created_at,
    ) = row[:IMAGE_WIDTH]
    return ImageRecord(
        job_id=job_id,
        index=index,
        sha256=sha256,
        width=width,
        height=height,
        size_bytes=size_bytes,
        mime=mime,
        seed=seed,
        provider=provider,
        model=model,
        revised_prompt=revised_prompt,
        cost_usd=cost_usd,
        created_at=created_at,
    )


def utc_day(timestamp: float) -> str:
    """The UTC calendar day (YYYY-MM-DD) of a timestamp: the usage ledger's key."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d")


# --- cursors ----------------------------------------------------------------------------------
# A cursor is the sort key of the last item on a page, as base64 JSON: opaque to callers, short
# enough for a button id, and exact (JSON floats round-trip), so ties in created_at are safe.


def encode_cursor(*key: float | str | int) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """Decode a cursor whose parts have the given types; a damaged one is an InvalidRequest."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequest("That page link is not valid any more; open the list again.") from exc
    if not isinstance(key, list) or len(key) != len(kinds) or not all(map(_is_kind, key, kinds)):
        raise InvalidRequest("That page link is not valid any more; open the list again.")
    return [float(part) if kind is float else part for part, kind in zip(key, kinds, strict=True)]


def _is_kind(value: object, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


# --- full-text search -------------------------------------------------------------------------


def fts_query(text: str) -> str | None:
    """Turn user text into an FTS5 query that matches every word, or ``None`` if it has none.

    Each whitespace-separated term becomes a quoted string (inner quotes doubled), so operators
    (AND, OR, NOT, NEAR), column filters, ``*``, ``^``, ``-`` and brackets are only ever text and
    cannot raise an FTS syntax error. NUL and unpaired surrogates cannot be bound, so they go.
    """
    clean = text.encode("utf-8", "replace").decode("utf-8").replace("\x00", " ")
    terms = ['"' + term.replace('"', '""') + '"' for term in clean.split()]
    return " ".join(terms) if terms else None
