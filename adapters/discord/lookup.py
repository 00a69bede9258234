"""Finding the job behind one of our messages, for reactions and context menus.

The job id is in the message itself (its buttons' custom ids, and the embed footer), so this works
on old messages and after restarts with no extra storage. Messages we posted recently are
remembered, saving a fetch; older ones are fetched once (a bot sees the content of its own
messages without the message-content intent).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import discord

from adapters.discord.components import parse_custom_id

_FOOTER = re.compile(r"^job ([0-9a-z]{1,32})\b")
CACHE_SIZE = 4096


class MessageIndex:
    """message id -> job id, bounded; misses are fetched with the bot token."""

    def __init__(self, client: discord.Client, *, size: int = CACHE_SIZE) -> None:
        self._client = client
        self._size = size
        self._known: OrderedDict[int, str | None] = OrderedDict()

    def remember(self, message_id: int, job_id: str | None) -> None:
        self._known[message_id] = job_id
        self._known.move_to_end(message_id)
        while len(self._known) > self._size:
            self._known.popitem(last=False)

    async def job_id(self, channel_id: int, message_id: int) -> str | None:
        if message_id in self._known:
            return self._known[message_id]
        try:
            data = await self._client.http.get_message(channel_id, message_id)
        except (discord.NotFound, discord.Forbidden):
            return None
        job_id = job_id_from_payload(data)
        self.remember(message_id, job_id)
        return job_id


def job_id_from_payload(data: Mapping[str, Any]) -> str | None:
    """The job id in a raw message payload (button custom ids first, then the embed footer)."""
    ids = [c.get("custom_id", "") for row in data.get("components", []) for c in row.get("components", [])]
    footers = [(e.get("footer") or {}).get("text", "") for e in data.get("embeds", [])]
    return _first_job(ids, footers)


def job_id_from_message(message: discord.Message) -> str | None:
    """The job id in a message discord.py parsed (for context menus)."""
    ids = [
        getattr(child, "custom_id", None) or ""
        for row in message.components
        for child in getattr(row, "children", [])
    ]
    footers = [embed.footer.text or "" for embed in message.embeds]
    return _first_job(ids, footers)


def _first_job(custom_ids: Iterable[str], footers: Iterable[str]) -> str | None:
    for value in custom_ids:
        parsed = parse_custom_id(value)
        if parsed is not None:
            return parsed[1]
    for text in footers:
        match = _FOOTER.match(text)
        if match:
            return match.group(1)
    return None
