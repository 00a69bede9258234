"""Where replies go: the small interface each surface (web, Discord, Slack, terminal) implements.

The core renders nothing platform-specific. It tells a surface what a job's card should show now
(:class:`Card`) and hands it the finished images (:class:`Delivery`); the surface posts or edits
its own messages and returns references (message ids) that the core stores with the job so the
same message can be edited after a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.jobs import ImageRecord, Job, JobStatus


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How often a surface may edit messages.

    At most one edit per message every ``per_message_seconds``, and at most ``window_edits``
    edits per ``window_seconds`` per scope; the scope is a channel, or the whole server
    (Slack counts chat.update per workspace).
    """

    per_message_seconds: float
    window_edits: int
    window_seconds: float
    per_server: bool = False


DISCORD_THROTTLE = ThrottlePolicy(per_message_seconds=2.0, window_edits=4, window_seconds=5.0)
SLACK_THROTTLE = ThrottlePolicy(per_message_seconds=3.0, window_edits=40, window_seconds=60.0, per_server=True)
WEB_THROTTLE = ThrottlePolicy(per_message_seconds=0.25, window_edits=40, window_seconds=1.0)


@dataclass(frozen=True, slots=True)
class Card:
    """What a job's message should show at this moment."""

    job: Job
    status: JobStatus
    #: 1-based place in the queue while waiting.
    position: int | None = None
    eta_seconds: float | None = None
    fraction: float | None = None
    step_text: str = ""
    preview: bytes | None = None
    #: A user-facing explanation when the job failed or was cancelled.
    error: str | None = None
    #: Set when a fallback provider served the job instead of the one asked for.
    served_by: str | None = None

    @property
    def final(self) -> bool:
        return self.status.finished

    @property
    def flagged(self) -> bool:
        """Moderation flagged the job (NSFW, where allowed): hide its previews behind a spoiler or blur."""
        return self.job.request.flagged


@dataclass(frozen=True, slots=True)
class OutFile:
    """A file ready to upload: already within the surface's upload limit."""

    filename: str
    data: bytes
    mime: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """A finished job's results: the records and the files to post (grid first when there is one)."""

    job: Job
    images: list[ImageRecord]
    files: list[OutFile]
    #: Stable per job: a surface that may be asked twice (after a crash) uses it to post once.
    key: str
    served_by: str | None = None
    #: Moderation flagged the images (NSFW, where allowed): post them as spoilers, blurred until
    #: clicked, or behind a "show" button where the platform has no spoilers.
    flagged: bool = False


class Surface(Protocol):
    """A place where jobs are shown: implemented by each adapter."""

    #: Platform name, matching ``Origin.platform`` of the jobs it serves.
    name: str
    #: Largest file the surface accepts, in bytes; deliveries are re-encoded to fit.
    upload_limit_bytes: int
    #: Most files in one delivery message.
    max_files: int
    throttle: ThrottlePolicy

    async def show(self, card: Card) -> dict[str, str] | None:
        """Post or edit the job's card. Return new message references to store, or None."""
        ...

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        """Post the finished images. Return new message references to store, or None."""
        ...
