"""Finding the job behind one of our messages, for reactions.

Cards this process posted are remembered (channel and ts to job id, bounded). Any other message
of ours, an older card or the upload in a card's thread, is read once with
``conversations.replies``: given a message of a thread it returns the thread's parent first,
which is the card, and the card names its job in its buttons' action ids and its fallback text.
So reactions work on old messages and after restarts with no extra storage.
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.buttons import parse_action_id

log = logging.getLogger(__name__)

CACHE_SIZE = 4096
#: A card's fallback text starts with "job <id>:" (see :func:`adapters.slack.blocks.card_message`).
_JOB_TEXT = re.compile(r"job ([0-9a-z]{1,32}):")


class MessageIndex:
    """(channel, ts) -> job id; misses are read with the bot token."""

    def __init__(self, client: AsyncWebClient, *, size: int = CACHE_SIZE) -> None:
        self._client = client
        self._size = size
        self._known: OrderedDict[tuple[str, str], str | None] = OrderedDict()

    def remember(self, channel: str, ts: str, job_id: str | None) -> None:
        key = (channel, ts)
        self._known[key] = job_id
        self._known.move_to_end(key)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    async def job_id(self, channel: str, ts: str) -> str | None:
        if (channel, ts) in self._known:
            return self._known[(channel, ts)]
        try:
            response = await self._client.conversations_replies(channel=channel, ts=ts, limit=1)
        except SlackApiError as exc:
            log.info("cannot read message %s in %s (%s)", ts, channel, exc.response.get("error", "?"))
            return None
        found = response.get("messages") or []
        job_id = job_id_from_message(found[0]) if found else None
        self.remember(channel, ts, job_id)
        return job_id


def job_id_from_message(message: Mapping[str, Any]) -> str | None:
    """The job a message of ours names: its buttons' action ids first, then its text."""
    ids = [
        str(element.get("action_id", ""))
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements") or []
    ]
    return _first_job(ids, [str(message.get("text") or "")])


def _first_job(action_ids: Iterable[str], texts: Iterable[str]) -> str | None:
    for value in action_ids:
        parsed = parse_action_id(value)
        if parsed is not None:
            return parsed[1]
    for text in texts:
        match = _JOB_TEXT.match(text)
        if match:
            return match.group(1)
    return None
