"""History, gallery and favourites pages: the keyset-paginated reads of the SQLite store.

Pages are newest first. A page fetches one row more than it shows, so ``next_cursor`` is ``None``
exactly on the last page, and its cursor is the sort key of its last item, so rows added while
someone pages never shift or repeat what they see. Deleted jobs never appear.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from bot.jobs import GalleryItem, Job, Page
from storage.sqlite_rows import (
    IMAGE_COLUMNS,
    IMAGE_WIDTH,
    JOB_COLUMNS,
    JOB_WIDTH,
    decode_cursor,
    encode_cursor,
    fts_query,
    image_from_row,
    job_from_row,
)

_FAVOURITE_COUNT = (
    "(SELECT count(*) FROM favourites f2 WHERE f2.job_id = i.job_id AND f2.image_index = i.idx)"
)


async def channel_history(
    conn: aiosqlite.Connection, platform: str, channel_id: str, *, cursor: str | None, limit: int
) -> Page[Job]:
    where = ["j.platform = ?", "j.channel_id = ?", "j.deleted = 0"]
    params: list[Any] = [platform, channel_id]
    if cursor is not None:
        created_at, job_id = decode_cursor(cursor, (float, str))
        where.append("(j.created_at, j.id) < (?, ?)")
        params += [created_at, job_id]
    sql = (
        f"SELECT {JOB_COLUMNS} FROM jobs j WHERE {' AND '.join(where)} "
        "ORDER BY j.created_at DESC, j.id DESC LIMIT ?"
    )
    rows = list(await conn.execute_fetchall(sql, (*params, _fetch(limit))))
    jobs = [job_from_row(row) for row in rows[:limit]]
    more = len(rows) > limit
    return Page(jobs, encode_cursor(jobs[-1].created_at, jobs[-1].id) if more and jobs else None)


async def channel_gallery(
    conn: aiosqlite.Connection,
    platform: str,
    channel_id: str,
    *,
    user_id: str | None,
    provider: str | None,
    since: float | None,
    until: float | None,
    search: str | None,
    cursor: str | None,
    limit: int,
) -> Page[GalleryItem]:
    """Succeeded jobs' images, by job (newest first) then image index; ``until`` is exclusive."""
    where = ["j.platform = ?", "j.channel_id = ?", "j.status = 'succeeded'", "j.deleted = 0"]
    params: list[Any] = [platform, channel_id]
    for clause, value in (
        ("j.user_id = ?", user_id),
        ("i.provider = ?", provider),
        ("j.created_at >= ?", since),
        ("j.created_at < ?", until),
    ):
        if value is not None:
            where.append(clause)
            params.append(value)
    query = fts_query(search) if search is not None else None
    if query is not None:
        where.append("j.seq IN (SELECT rowid FROM job_search WHERE job_search MATCH ?)")
        params.append(query)
    if cursor is not None:
        created_at, job_id, index = decode_cursor(cursor, (float, str, int))
        # Images ascend within a job while jobs descend, so one row value cannot express the key;
        # the row-value bound is implied by the rest but lets the index seek instead of scan.
        where.append(
            "(j.created_at, j.id) <= (?, ?) "
            "AND (j.created_at < ? OR (j.created_at = ? AND (j.id < ? OR (j.id = ? AND i.idx > ?))))"
        )
        params += [created_at, job_id, created_at, created_at, job_id, job_id, index]
    sql = (
        f"SELECT {JOB_COLUMNS}, {IMAGE_COLUMNS}, {_FAVOURITE_COUNT} "
        f"FROM jobs j JOIN images i ON i.job_id = j.id WHERE {' AND '.join(where)} "
        "ORDER BY j.created_at DESC, j.id DESC, i.idx ASC LIMIT ?"
    )
    rows = list(await conn.execute_fetchall(sql, (*params, _fetch(limit))))
    items = _gallery_items(rows[:limit])
    if len(rows) <= limit or not items:
        return Page(items, None)
    last = items[-1]
    return Page(items, encode_cursor(last.job.created_at, last.job.id, last.image.index))


async def favourites(
    conn: aiosqlite.Connection, platform: str, user_id: str, *, cursor: str | None, limit: int
) -> Page[GalleryItem]:
    """A user's favourite images, most recently favourited first."""
    where = ["f.platform = ?", "f.user_id = ?", "j.deleted = 0"]
    params: list[Any] = [platform, user_id]
    if cursor is not None:
        (seq,) = decode_cursor(cursor, (int,))
        where.append("f.seq < ?")
        params.append(seq)
    sql = (
        f"SELECT {JOB_COLUMNS}, {IMAGE_COLUMNS}, {_FAVOURITE_COUNT}, f.seq "
        "FROM favourites f JOIN images i ON i.job_id = f.job_id AND i.idx = f.image_index "
        f"JOIN jobs j ON j.id = f.job_id WHERE {' AND '.join(where)} ORDER BY f.seq DESC LIMIT ?"
    )
    rows = list(await conn.execute_fetchall(sql, (*params, _fetch(limit))))
    items = _gallery_items(rows[:limit])
    more = len(rows) > limit and bool(items)
    return Page(items, encode_cursor(rows[limit - 1][-1]) if more else None)


def _fetch(limit: int) -> int:
    if limit < 1:
        raise ValueError(f"a page holds at least one item, not {limit}")
    return limit + 1


def _gallery_items(rows: list[Any]) -> list[GalleryItem]:
    jobs: dict[str, Job] = {}
    items = []
    for row in rows:
        job_id = row[0]
        job = jobs.get(job_id)
        if job is None:
            # A job with four images is decoded once per page, not four times.
            job = jobs[job_id] = job_from_row(row)
        image = image_from_row(row[JOB_WIDTH:])
        items.append(GalleryItem(job=job, image=image, favourite_count=row[JOB_WIDTH + IMAGE_WIDTH]))
    return items
