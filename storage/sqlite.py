"""The SQLite implementation of :class:`storage.base.Storage`, on aiosqlite.

Two connections to one WAL database: writes go through a :class:`GroupCommitWriter` (concurrent
writes share a transaction, and each caller's await returns after the commit), reads go to a
second, read-only connection so they never queue behind a batch of writes. Every write has
committed when its method returns; with ``synchronous = NORMAL`` in WAL mode that survives a crash
of the process, ``"full"`` also survives power loss.

Methods that change one job raise :class:`bot.errors.NotFound` when there is no such job.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bot.errors import NotFound
from bot.jobs import GalleryItem, ImageRecord, Job, JobStatus, Page, UsageSummary
from bot.moderation import AuditEntry
from storage import faults, sqlite_audit, sqlite_gallery, sqlite_settings
from storage.migrations import migrate
from storage.sqlite_rows import (
    IMAGE_COLUMNS,
    INSERT_IMAGE,
    INSERT_JOB,
    JOB_COLUMNS,
    image_from_row,
    image_to_row,
    job_from_row,
    job_to_row,
    utc_day,
)
from storage.sqlite_writer import GroupCommitWriter, RowsMissing, Statement, StorageClosed, Write

_log = logging.getLogger(__name__)

# The job's platform, server and user come from its row, so the ledger cannot disagree with it.
_INSERT_USAGE = (
    "INSERT INTO usage_ledger (job_id, platform, server_id, user_id, day, images, cost_usd) "
    "SELECT id, platform, server_id, user_id, ?, ?, ? FROM jobs WHERE id = ?"
)


class SqliteStorage:
    """Jobs, images, history, galleries, favourites, settings, templates and usage in one file."""

    def __init__(self, path: Path, *, synchronous: str = "normal", busy_timeout: float = 10.0) -> None:
        """``busy_timeout``: seconds to wait for another process's lock before a write fails."""
        if synchronous.lower() not in ("normal", "full"):
            raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
        self._path = path
        self._synchronous = synchronous.upper()
        self._busy_timeout_ms = int(busy_timeout * 1000)
        self._write_conn: aiosqlite.Connection | None = None
        self._read_conn: aiosqlite.Connection | None = None
        self._writer: GroupCommitWriter | None = None

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, switch to WAL and apply pending migrations (a no-op when already open)."""
        if self._writer is not None:
            return
        await asyncio.to_thread(self._path.parent.mkdir, parents=True, exist_ok=True)
        write_conn = await self._connect()
        try:
            rows = await write_conn.execute_fetchall("PRAGMA journal_mode = WAL")
            if str(next(iter(rows))[0]).lower() != "wal":
                _log.warning("%s: no WAL mode; readers and the writer will block each other", self._path)
            await write_conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            await migrate(write_conn)
            read_conn = await self._connect(read_only=True)
        except BaseException:
            await write_conn.close()
            raise
        self._write_conn, self._read_conn = write_conn, read_conn
        self._writer = GroupCommitWriter(write_conn)
        self._writer.start()

    async def _connect(self, *, read_only: bool = False) -> aiosqlite.Connection:
        # isolation_level=None: the group commit issues BEGIN and COMMIT itself; sqlite3's implicit
        # transactions would begin and end at other points.
        conn = await aiosqlite.connect(self._path, isolation_level=None)
        try:
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            if read_only:
                await conn.execute("PRAGMA query_only = ON")
        except BaseException:
            await conn.close()
            raise
        return conn

    async def close(self) -> None:
        """Commit writes already submitted, then close both connections."""
        if self._writer is not None:
            await self._writer.close()
        for conn in (self._read_conn, self._write_conn):
            if conn is not None:
                await conn.close()
        self._writer = self._read_conn = self._write_conn = None

    async def healthy(self) -> bool:
        if self._writer is None or not self._writer.running or self._read_conn is None:
            return False
        try:
            await self._read_conn.execute_fetchall("SELECT 1")
        except (aiosqlite.Error, ValueError):
            return False
        return True

    # --- plumbing ---------------------------------------------------------------------------

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with faults.translated():  # a sick disk is a clear StorageUnavailable, not a raw sqlite error
            return list(await self._reader.execute_fetchall(sql, params))

    @property
    def _reader(self) -> aiosqlite.Connection:
        if self._read_conn is None:
            raise StorageClosed("storage is not open")
        return self._read_conn

    async def _write(self, sql: str, params: Sequence[Any]) -> int:
        """Run one statement through the group commit; return the number of rows it changed."""
        (changed,) = await self._submit(Write((Statement(sql, (params,)),)))
        return changed

    async def _submit(self, write: Write) -> list[int]:
        if self._writer is None:
            raise StorageClosed("storage is not open")
        with faults.translated():
            return await self._writer.submit(write)

    async def _update_job(self, job_id: str, assignments: str, params: Sequence[Any]) -> None:
        statement = Statement(f"UPDATE jobs SET {assignments} WHERE id = ?", ((*params, job_id),), expect=1)
        try:
            await self._submit(Write((statement,)))
        except RowsMissing as exc:
            raise NotFound(f"There is no job {job_id}.") from exc

    # --- jobs -------------------------------------------------------------------------------

    async def insert_jobs(self, jobs: Sequence[Job]) -> None:
        """Persist new jobs, all or none; a repeated id raises ``sqlite3.IntegrityError``."""
        if not jobs:
            return
        rows = [job_to_row(job) for job in jobs]
        await self._submit(Write((Statement(INSERT_JOB, rows, expect=len(rows)),)))

    async def get_job(self, job_id: str) -> Job | None:
        rows = await self._read(f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.id = ?", (job_id,))
        return job_from_row(rows[0]) if rows else None

    async def mark_running(self, job_id: str, *, started_at: float, attempts: int) -> None:
        await self._update_job(
            job_id, "status = 'running', started_at = ?, attempts = ?", (started_at, attempts)
        )

    async def requeue(self, job_id: str, *, attempts: int, error: str | None) -> None:
        await self._update_job(
            job_id, "status = 'queued', started_at = NULL, attempts = ?, error = ?", (attempts, error)
        )

    async def set_provider(self, job_id: str, provider: str) -> None:
        await self._update_job(job_id, "provider = ?", (provider,))

    async def finish_job(
        self,
        job_id: str,
        *,
        status: JobStatus,
        finished_at: float,
        error: str | None = None,
        images: Sequence[ImageRecord] = (),
    ) -> None:
        """Set the final status, store the images and (for a success) the usage, atomically."""
        if not status.finished:
            raise ValueError(f"finish_job needs a final status, not {status.value}")
        if any(image.job_id != job_id for image in images):
            raise ValueError(f"finish_job({job_id!r}) was given another job's images")
        statements = [
            Statement(
                "UPDATE jobs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                ((status.value, finished_at, error, job_id),),
                expect=1,
            )
        ]
        if images:
            statements.append(Statement(INSERT_IMAGE, [image_to_row(i) for i in images], expect=len(images)))
        if status is JobStatus.SUCCEEDED:
            usage = (utc_day(finished_at), len(images), sum(i.cost_usd for i in images), job_id)
            statements.append(Statement(_INSERT_USAGE, (usage,), expect=1))
        try:
            await self._submit(Write(tuple(statements)))
        except RowsMissing as exc:
            raise NotFound(f"There is no job {job_id}.") from exc

    async def mark_delivered(self, job_id: str, *, delivered_at: float) -> None:
        await self._update_job(job_id, "delivered_at = ?", (delivered_at,))

    async def set_message_refs(self, job_id: str, refs: dict[str, str]) -> None:
        # json_patch merges inside the statement, so two concurrent merges cannot lose a key.
        await self._update_job(job_id, "message_refs = json_patch(message_refs, ?)", (json.dumps(refs),))

    async def mark_deleted(self, job_id: str) -> None:
        await self._update_job(job_id, "deleted = 1", ())

    async def unfinished_jobs(self) -> list[Job]:
        rows = await self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.status IN ('queued', 'running') "
            "ORDER BY j.created_at, j.id"
        )
        return [job_from_row(row) for row in rows]

    async def undelivered_jobs(self) -> list[Job]:
        rows = await self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.delivered_at IS NULL "
            "AND j.status IN ('succeeded', 'failed', 'cancelled') AND j.deleted = 0 "
            "ORDER BY j.created_at, j.id"
        )
        return [job_from_row(row) for row in rows]

    async def user_jobs(
        self, platform: str, user_id: str, statuses: Sequence[JobStatus], limit: int = 50
    ) -> list[Job]:
        """A user's jobs in the given states, oldest first (deleted ones too: they still run)."""
        if not statuses:
            return []
        marks = ", ".join("?" * len(statuses))
        rows = await self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs j WHERE j.platform = ? AND j.user_id = ? "
            f"AND j.status IN ({marks}) ORDER BY j.created_at, j.id LIMIT ?",
            (platform, user_id, *(s.value for s in statuses), limit),
        )
        return [job_from_row(row) for row in rows]

    async def count_user_jobs(self, platform: str, user_id: str, statuses: Sequence[JobStatus]) -> int:
        if not statuses:
            return 0
        marks = ", ".join("?" * len(statuses))
        rows = await self._read(
            f"SELECT count(*) FROM jobs WHERE platform = ? AND user_id = ? AND status IN ({marks})",
            (platform, user_id, *(s.value for s in statuses)),
        )
        return int(rows[0][0])

    # --- images -----------------------------------------------------------------------------

    async def job_images(self, job_id: str) -> list[ImageRecord]:
        rows = await self._read(
            f"SELECT {IMAGE_COLUMNS} FROM images i WHERE i.job_id = ? ORDER BY i.idx", (job_id,)
        )
        return [image_from_row(row) for row in rows]

    async def find_cached(self, cache_key: str) -> str | None:
        rows = await self._read(
            "SELECT id FROM jobs WHERE cache_key = ? AND status = 'succeeded' AND deleted = 0 "
            "ORDER BY created_at DESC, id DESC LIMIT 1",
            (cache_key,),
        )
        return str(rows[0][0]) if rows else None

    async def set_cache_key(self, job_id: str, cache_key: str) -> None:
        await self._update_job(job_id, "cache_key = ?", (cache_key,))

    # --- history and galleries ---------------------------------------------------------------

    async def channel_history(
        self, platform: str, channel_id: str, *, cursor: str | None = None, limit: int = 20
    ) -> Page[Job]:
        return await sqlite_gallery.channel_history(
            self._reader, platform, channel_id, cursor=cursor, limit=limit
        )

    async def channel_gallery(
        self,
        platform: str,
        channel_id: str,
        *,
        user_id: str | None = None,
        provider: str | None = None,
        since: float | None = None,
        until: float | None = None,
        search: str | None = None,
        cursor: str | None = None,
        limit: int = 24,
    ) -> Page[GalleryItem]:
        """The channel's images, newest first; ``since`` is inclusive, ``until`` exclusive."""
        return await sqlite_gallery.channel_gallery(
            self._reader, platform, channel_id, user_id=user_id, provider=provider, since=since,
            until=until, search=search, cursor=cursor, limit=limit,
        )

    async def channels(self, platform: str | None = None) -> list[tuple[str, str]]:
        where, params = ("AND platform = ?", (platform,)) if platform is not None else ("", ())
        rows = await self._read(
            f"SELECT platform, channel_id FROM jobs WHERE deleted = 0 {where} "
            "GROUP BY platform, channel_id ORDER BY max(created_at) DESC, platform, channel_id",
            params,
        )
        return [(str(p), str(c)) for p, c in rows]

    # --- favourites -------------------------------------------------------------------------

    async def set_favourite(
        self, platform: str, user_id: str, job_id: str, image_index: int, on: bool
    ) -> None:
        """Star or unstar an image; starring one that does not exist (or was deleted) is NotFound."""
        if not on:
            await self._write(
                "DELETE FROM favourites "
                "WHERE platform = ? AND user_id = ? AND job_id = ? AND image_index = ?",
                (platform, user_id, job_id, image_index),
            )
            return
        # Inserting from a SELECT makes "the image exists and is visible" part of the same write.
        inserted = await self._write(
            "INSERT INTO favourites (platform, user_id, job_id, image_index) "
            "SELECT ?, ?, i.job_id, i.idx FROM images i JOIN jobs j ON j.id = i.job_id "
            "WHERE i.job_id = ? AND i.idx = ? AND j.deleted = 0 "
            "ON CONFLICT (platform, user_id, job_id, image_index) DO NOTHING",
            (platform, user_id, job_id, image_index),
        )
        if inserted == 0 and not await self._is_favourite(platform, user_id, job_id, image_index):
            raise NotFound(f"There is no image {image_index + 1} in job {job_id}.")

    async def _is_favourite(self, platform: str, user_id: str, job_id: str, image_index: int) -> bool:
        rows = await self._read(
            "SELECT 1 FROM favourites WHERE platform = ? AND user_id = ? AND job_id = ? AND image_index = ?",
            (platform, user_id, job_id, image_index),
        )
        return bool(rows)

    async def favourites(
        self, platform: str, user_id: str, *, cursor: str | None = None, limit: int = 24
    ) -> Page[GalleryItem]:
        """A user's favourite images, most recently starred first."""
        return await sqlite_gallery.favourites(self._reader, platform, user_id, cursor=cursor, limit=limit)

    # --- settings, templates and usage -------------------------------------------------------

    async def get_settings(self, scope: str, platform: str, scope_id: str) -> dict[str, Any]:
        return await sqlite_settings.get_settings(self._read, scope, platform, scope_id)

    async def set_settings(self, scope: str, platform: str, scope_id: str, values: dict[str, Any]) -> None:
        await sqlite_settings.set_settings(self._write, scope, platform, scope_id, values)

    async def save_template(
        self, platform: str, scope: str, scope_id: str, name: str, body: dict[str, Any]
    ) -> None:
        await sqlite_settings.save_template(self._write, platform, scope, scope_id, name, body)

    async def delete_template(self, platform: str, scope: str, scope_id: str, name: str) -> bool:
        return await sqlite_settings.delete_template(self._write, platform, scope, scope_id, name)

    async def templates(self, platform: str, scope: str, scope_id: str) -> dict[str, dict[str, Any]]:
        return await sqlite_settings.templates(self._read, platform, scope, scope_id)

    async def usage(
        self, platform: str, server_id: str, day: str, user_id: str | None = None
    ) -> UsageSummary:
        return await sqlite_settings.usage(self._read, platform, server_id, day, user_id)

    async def usage_by_day(self, platform: str, server_id: str, days: int = 30) -> list[UsageSummary]:
        """The last ``days`` days that have usage, newest first."""
        return await sqlite_settings.usage_by_day(self._read, platform, server_id, days)

    # --- moderation audit -------------------------------------------------------------------

    async def record_audit(self, entry: AuditEntry) -> None:
        await sqlite_audit.record_audit(self._write, entry)

    async def audit_log(
        self, platform: str, server_id: str, *, cursor: str | None = None, limit: int = 20, user_id: str | None = None
    ) -> Page[AuditEntry]:
        return await sqlite_audit.audit_log(
            self._read, platform, server_id, cursor=cursor, limit=limit, user_id=user_id
        )
