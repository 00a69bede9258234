"""Jobs, their images and where they came from: the records the queue, storage and surfaces share."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Generic, TypeVar

from bot.request import GenerationRequest


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_job_id(now: float | None = None) -> str:
    """A short, time-ordered, URL- and custom-id-safe id (12 chars: 8 of time, 4+ of randomness)."""
    ms = int((time.time() if now is None else now) * 1000)
    stamp = ""
    for _ in range(9):
        stamp = _ALPHABET[ms % 32] + stamp
        ms //= 32
    rand = int.from_bytes(os.urandom(4), "big")
    tail = ""
    for _ in range(5):
        tail += _ALPHABET[rand % 32]
        rand //= 32
    return stamp + tail


@dataclass(frozen=True, slots=True)
class Origin:
    """Who asked, and where: the platform-neutral address of a request."""

    platform: str  # "web", "discord", "slack", "cli"
    server_id: str  # guild id, team id, or "local"
    channel_id: str
    user_id: str
    user_name: str = ""
    thread_id: str | None = None
    #: Role ids or names the user has on this server (for limit overrides).
    roles: frozenset[str] = frozenset()
    #: Whether the platform says this user administers the server.
    is_admin: bool = False
    #: Whether the channel is marked NSFW on its platform.
    nsfw_channel: bool = False


@dataclass(slots=True)
class Job:
    """One unit of work on the queue: one request, one provider call sequence, one card."""

    id: str
    origin: Origin
    request: GenerationRequest
    provider: str
    status: JobStatus = JobStatus.QUEUED
    attempts: int = 0
    created_at: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    #: What the surface needs to find this job's messages again (card message id, thread id ...).
    message_refs: dict[str, str] = field(default_factory=dict)
    #: When the final state and images were handed to the surface; never delivered twice.
    delivered_at: float | None = None
    #: Jobs submitted together (prompt permutations) share a batch id.
    batch_id: str | None = None
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """One stored output image; the bytes live in the blob store under ``sha256``."""

    job_id: str
    index: int
    sha256: str
    width: int
    height: int
    size_bytes: int
    mime: str
    seed: int | None
    provider: str
    model: str
    revised_prompt: str | None = None
    cost_usd: float = 0.0
    created_at: float = 0.0


@dataclass(frozen=True, slots=True)
class GalleryItem:
    """An image with the job it came from, for galleries."""

    job: Job
    image: ImageRecord
    favourite_count: int = 0


T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """A page of results, newest first; pass ``next_cursor`` back to get the following page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class UsageSummary:
    """Images made and money spent by a server (or a user) on one UTC day."""

    day: str  # YYYY-MM-DD, UTC
    images: int
    cost_usd: float
