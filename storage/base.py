"""The storage interface the core depends on.

``storage/sqlite.py`` implements it with aiosqlite; a server database can replace it by
implementing the same protocol. Every method that returns has made its write durable: a job
returned from :meth:`Storage.insert_jobs` survives a crash of the process.

Images themselves live in a :class:`BlobStore` (content-addressed files); the database keeps
their metadata and sha256.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from bot.jobs import GalleryItem, ImageRecord, Job, JobStatus, Page, UsageSummary
from bot.moderation import AuditEntry


class BlobStore(Protocol):
    """Content-addressed bytes: ``put`` returns the sha256 hex digest that ``get`` takes."""

    async def put(self, data: bytes) -> str: ...

    async def get(self, sha256: str) -> bytes:
        """Raise ``bot.errors.NotFound`` when absent."""
        ...

    async def exists(self, sha256: str) -> bool: ...


class Storage(Protocol):
    """Jobs, images, history, galleries, favourites, settings, templates, usage and the moderation audit."""

    async def open(self) -> None:
        """Connect and apply pending migrations."""
        ...

    async def close(self) -> None: ...

    async def healthy(self) -> bool: ...

    # --- jobs -------------------------------------------------------------------------------
    async def insert_jobs(self, jobs: Sequence[Job]) -> None:
        """Persist new queued jobs, all or none, durably before returning."""
        ...

    async def get_job(self, job_id: str) -> Job | None: ...

    async def mark_running(self, job_id: str, *, started_at: float, attempts: int) -> None: ...

    async def requeue(self, job_id: str, *, attempts: int, error: str | None) -> None:
        """Put a running job back to queued (retry, or recovery after a crash)."""
        ...

    async def set_provider(self, job_id: str, provider: str) -> None:
        """Record that another provider (a fallback) served the job."""
        ...

    async def finish_job(
        self,
        job_id: str,
        *,
        status: JobStatus,
        finished_at: float,
        error: str | None = None,
        images: Sequence[ImageRecord] = (),
    ) -> None:
        """Set a final status and store the job's images and usage, in one transaction."""
        ...

    async def mark_delivered(self, job_id: str, *, delivered_at: float) -> None: ...

    async def set_message_refs(self, job_id: str, refs: dict[str, str]) -> None:
        """Merge ``refs`` into the job's stored message references."""
        ...

    async def mark_deleted(self, job_id: str) -> None:
        """Hide a job and its images from history and galleries (blobs may stay)."""
        ...

    async def unfinished_jobs(self) -> list[Job]:
        """Queued and running jobs, oldest first (for restart recovery)."""
        ...

    async def undelivered_jobs(self) -> list[Job]:
        """Finished jobs whose final state was never handed to their surface."""
        ...

    async def user_jobs(
        self, platform: str, user_id: str, statuses: Sequence[JobStatus], limit: int = 50
    ) -> list[Job]:
        """A user's jobs in the given states, oldest first."""
        ...

    async def count_user_jobs(self, platform: str, user_id: str, statuses: Sequence[JobStatus]) -> int: ...

    # --- images -----------------------------------------------------------------------------
    async def job_images(self, job_id: str) -> list[ImageRecord]: ...

    async def find_cached(self, cache_key: str) -> str | None:
        """The id of a succeeded, undeleted job with this deterministic cache key, if any."""
        ...

    async def set_cache_key(self, job_id: str, cache_key: str) -> None: ...

    # --- history and galleries ---------------------------------------------------------------
    async def channel_history(
        self, platform: str, channel_id: str, *, cursor: str | None = None, limit: int = 20
    ) -> Page[Job]:
        """The channel's jobs (prompts), newest first, keyset-paginated."""
        ...

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
        """The channel's images, newest first; ``search`` is full-text over prompts (FTS5)."""
        ...

    async def channels(self, platform: str | None = None) -> list[tuple[str, str]]:
        """(platform, channel_id) pairs that have jobs, most recently active first."""
        ...

    # --- favourites -------------------------------------------------------------------------
    async def set_favourite(
        self, platform: str, user_id: str, job_id: str, image_index: int, on: bool
    ) -> None: ...

    async def favourites(
        self, platform: str, user_id: str, *, cursor: str | None = None, limit: int = 24
    ) -> Page[GalleryItem]: ...

    # --- settings and templates ---------------------------------------------------------------
    async def get_settings(self, scope: str, platform: str, scope_id: str) -> dict[str, Any]:
        """Settings of a "server", "channel" or "user" scope; {} when none were saved."""
        ...

    async def set_settings(self, scope: str, platform: str, scope_id: str, values: dict[str, Any]) -> None:
        """Replace the scope's settings."""
        ...

    async def save_template(
        self, platform: str, scope: str, scope_id: str, name: str, body: dict[str, Any]
    ) -> None:
        """A saved template (scope "server" or "user"); replaces one of the same name."""
        ...

    async def delete_template(self, platform: str, scope: str, scope_id: str, name: str) -> bool: ...

    async def templates(self, platform: str, scope: str, scope_id: str) -> dict[str, dict[str, Any]]: ...

    # --- usage ------------------------------------------------------------------------------
    async def usage(
        self, platform: str, server_id: str, day: str, user_id: str | None = None
    ) -> UsageSummary:
        """Images and cost recorded for a server (or one user in it) on a UTC day."""
        ...

    async def usage_by_day(self, platform: str, server_id: str, days: int = 30) -> list[UsageSummary]: ...

    # --- moderation audit ---------------------------------------------------------------------
    async def record_audit(self, entry: AuditEntry) -> None:
        """Append one row to the moderation audit log (``entry.id`` is ignored: storage numbers rows)."""
        ...

    async def audit_log(
        self, platform: str, server_id: str, *, cursor: str | None = None, limit: int = 20, user_id: str | None = None
    ) -> Page[AuditEntry]:
        """A server's audit rows (optionally one user's), newest first, keyset-paginated."""
        ...
