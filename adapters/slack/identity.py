"""Who asked, and where: Slack payloads as core :class:`~bot.jobs.Origin`.

``server_id`` is the team (workspace) id. Whether someone is an admin comes from ``users.info``
(``is_admin`` or ``is_owner``), cached for a minute: it decides ownership overrides and limit
exemptions in the service, and Slack sends it in no payload. The display name comes from the
same call, so reactions (whose events carry only a user id) name people like commands do.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.jobs import Origin

log = logging.getLogger(__name__)

PLATFORM = "slack"
CACHE_SECONDS = 60.0
CACHE_SIZE = 2048


@dataclass(frozen=True, slots=True)
class Member:
    """What the bot knows about a workspace member."""

    name: str
    is_admin: bool


class Identity:
    """Builds origins; ``users.info`` answers are cached briefly and in bounded memory."""

    def __init__(self, client: AsyncWebClient, clock: Clock, *, ttl: float = CACHE_SECONDS,
                 size: int = CACHE_SIZE) -> None:
        self._client = client
        self._clock = clock
        self._ttl = ttl
        self._size = size
        self._cache: OrderedDict[str, tuple[float, Member]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Member]] = {}

    async def member(self, user_id: str, fallback_name: str = "") -> Member:
        cached = self._cache.get(user_id)
        if cached is not None and cached[0] > self._clock.monotonic():
            return cached[1]
        # A burst of commands by one person asks Slack once.
        pending = self._pending.get(user_id)
        if pending is None:
            pending = self._pending[user_id] = asyncio.ensure_future(self._look_up(user_id, fallback_name))
            pending.add_done_callback(lambda _: self._pending.pop(user_id, None))
        return await asyncio.shield(pending)

    async def _look_up(self, user_id: str, fallback_name: str) -> Member:
        try:
            response = await self._client.users_info(user=user_id)
        except SlackApiError as exc:
            # Without the answer the member is treated as a non-admin; the service still works.
            log.info("users.info for %s failed (%s); treating them as a member", user_id, _error(exc))
            return Member(name=fallback_name or user_id, is_admin=False)
        user = response.get("user") or {}
        profile = user.get("profile") or {}
        name = profile.get("display_name") or profile.get("real_name") or user.get("name") or fallback_name
        member = Member(name=str(name or user_id), is_admin=bool(user.get("is_admin") or user.get("is_owner")))
        self._cache[user_id] = (self._clock.monotonic() + self._ttl, member)
        self._cache.move_to_end(user_id)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return member

    async def origin(
        self, *, team_id: str, channel_id: str, user_id: str, user_name: str = "", thread_id: str | None = None
    ) -> Origin:
        member = await self.member(user_id, user_name)
        return Origin(
            platform=PLATFORM, server_id=team_id, channel_id=channel_id, user_id=user_id,
            user_name=member.name, thread_id=thread_id, is_admin=member.is_admin,
        )


def _error(exc: SlackApiError) -> str:
    response = exc.response
    return str(response.get("error", "unknown")) if response is not None else "no answer"
