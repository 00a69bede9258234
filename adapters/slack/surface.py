"""The Slack surface: job cards posted with ``chat.postMessage``, edited with ``chat.update``.

A card is the placeholder the command posted (``reply`` in the job's message refs, for a job
that is not part of a batch), or a message this surface posts (``card``). Edits arrive through
the core's throttle (:data:`~bot.surface.SLACK_THROTTLE`: one per card per 3 s, 40 a minute per
workspace), and new messages are paced per channel (:mod:`.pacing`); ``response_url`` is never
used for cards (it allows 5 uses in 30 minutes). Results go into the card's thread with the
files v2 flow, one ``files_upload_v2`` call for all of a job's files, the parameters in its
message.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import blocks
from adapters.slack.lookup import MessageIndex
from adapters.slack.pacing import PostPacer
from bot.jobs import Job
from bot.surface import SLACK_THROTTLE, Card, Delivery, OutFile, ThrottlePolicy

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: Errors after which the card's message is gone and a new one is posted instead.
CARD_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})


def slack_error(exc: SlackApiError) -> str:
    """Slack's error code of a failed call (``ratelimited``, ``not_in_channel`` ...)."""
    response = exc.response
    return str(response.get("error", "unknown")) if response is not None else "no answer"


class SlackSurface:
    """Implements :class:`bot.surface.Surface` for jobs whose origin platform is ``slack``."""

    name = "slack"
    #: Files in one upload: the grid and up to four images fit easily.
    max_files = 10

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        pacer: PostPacer,
        index: MessageIndex,
        upload_limit_bytes: int = 20 * MIB,
        throttle: ThrottlePolicy = SLACK_THROTTLE,
    ) -> None:
        self._client = client
        self._pacer = pacer
        self._index = index
        self.upload_limit_bytes = upload_limit_bytes
        self.throttle = throttle

    # --- Surface ----------------------------------------------------------------------------------
    async def show(self, card: Card) -> dict[str, str] | None:
        job = card.job
        channel = card_channel(job)
        text, layout = blocks.card_message(card)
        ts = card_ts(job)
        if ts is not None:
            try:
                await self._client.chat_update(channel=channel, ts=ts, text=text, blocks=layout)
                return None
            except SlackApiError as exc:
                if slack_error(exc) not in CARD_GONE:
                    raise
                log.info("job %s: its card is gone (%s); posting a new one", job.id, slack_error(exc))
        ts = await self.post(channel, text, layout)
        self._index.remember(channel, ts, job.id)
        return {"channel": channel, "card": ts}

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        job = delivery.job
        if "files" in job.message_refs:
            return None  # uploaded before a restart; the core asks again only if it never heard back
        if not delivery.files:
            return None
        comment = blocks.result_comment(job, delivery.images, delivery.served_by)
        ids = await self.upload(card_channel(job), delivery.files, job, comment, thread_ts=card_ts(job))
        return {"files": ",".join(ids)}

    # --- messages ---------------------------------------------------------------------------------
    async def post(self, channel: str, text: str, layout: blocks.Blocks, *, thread_ts: str | None = None) -> str:
        """Post a message (paced per channel); returns its ts."""
        await self._pacer.wait(channel)
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        response = await self._client.chat_postMessage(
            channel=channel, text=text, blocks=layout, unfurl_links=False, unfurl_media=False, **extra
        )
        return str(response["ts"])

    async def delete(self, channel: str, ts: str) -> None:
        """Delete one of our messages (best effort: it may be gone already)."""
        try:
            await self._client.chat_delete(channel=channel, ts=ts)
        except SlackApiError as exc:
            log.info("could not delete message %s in %s (%s)", ts, channel, slack_error(exc))

    async def delete_files(self, file_ids: list[str]) -> None:
        for file_id in file_ids:
            with contextlib.suppress(SlackApiError):
                await self._client.files_delete(file=file_id)

    async def upload(
        self, channel: str, files: list[OutFile], job: Job, comment: str, *, thread_ts: str | None = None
    ) -> list[str]:
        """All ``files`` in one files v2 upload (into ``thread_ts`` when given); returns the file ids."""
        uploads = [
            {"content": f.data, "filename": f.filename, "title": blocks.file_title(job, f.filename),
             "alt_txt": blocks.alt_text(job)}
            for f in files[: self.max_files]
        ]
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        response = await self._client.files_upload_v2(
            channel=channel, file_uploads=uploads, initial_comment=comment, **extra
        )
        return [str(f["id"]) for f in response.get("files") or [] if isinstance(f, dict) and "id" in f]


def card_channel(job: Job) -> str:
    """The channel holding the job's card."""
    return job.message_refs.get("channel") or job.origin.channel_id


def card_ts(job: Job) -> str | None:
    """The card's ts: one the surface posted, or the command's placeholder for a single job.

    Jobs of a batch (``{a, b}`` prompts) get cards of their own, so no two jobs edit one message.
    """
    refs = job.message_refs
    return refs.get("card") or (refs.get("reply") if job.batch_id is None else None)
