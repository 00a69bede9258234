"""De-duplicating retried event deliveries.

Slack delivers an event again when it got no 2xx within 3 s (HTTP: ``X-Slack-Retry-Num``; Socket
Mode: the envelope's ``retry_attempt``), or when a connection dropped before the ack arrived.
Every retry carries the same ``event_id``, so a bounded memory of recent ids lets each event act
once: a reaction must not reroll twice. It runs after bolt's signature check, so a forged request
can never fill it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

log = logging.getLogger(__name__)

#: Event ids remembered; Slack's retries come within minutes, long before these are forgotten.
MEMORY = 4096


class EventDeduplication(AsyncMiddleware):
    """Acknowledges an event it has seen before without running any listener."""

    def __init__(self, *, size: int = MEMORY) -> None:
        self._size = size
        self._seen: OrderedDict[str, None] = OrderedDict()
        self.duplicates = 0

    def first_time(self, event_id: str) -> bool:
        """Whether ``event_id`` is new (it is remembered from now on)."""
        if event_id in self._seen:
            self._seen.move_to_end(event_id)
            return False
        self._seen[event_id] = None
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
        return True

    async def async_process(
        self, *, req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse | None:
        body = req.body
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if isinstance(event_id, str) and event_id and not self.first_time(event_id):
            self.duplicates += 1
            retry = req.headers.get("x-slack-retry-num", ["?"])[0]
            log.info("slack: event %s delivered again (retry %s); already handled", event_id, retry)
            return BoltResponse(status=200, body="")
        return await next()
