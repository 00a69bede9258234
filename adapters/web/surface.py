"""The web surface: cards and images pushed to the browsers watching a playground channel.

Each open page holds a :class:`Subscription` to one channel. Events are coalesced per job, so a
slow browser gets the newest state of each card rather than a backlog; the reporter's throttle
(``WEB_THROTTLE``) already keeps the rate sane for fast ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.web.views import card_json, images_event
from bot.surface import WEB_THROTTLE, Card, Delivery, ThrottlePolicy

#: Pending events a subscriber may hold before it is dropped (its page reconnects and reloads).
MAX_PENDING = 500


class Subscription:
    """One browser's view of one channel: the latest event per key, in arrival order."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._pending: dict[str, dict[str, Any]] = {}
        self._ready = asyncio.Event()
        self.overflowed = False

    def offer(self, key: str, event: dict[str, Any]) -> None:
        # Re-inserting moves the key to the end: events still leave in the order they last changed.
        self._pending.pop(key, None)
        self._pending[key] = event
        if len(self._pending) > MAX_PENDING:
            self.overflowed = True
            self._pending.clear()
        self._ready.set()

    async def next_batch(self) -> list[dict[str, Any]]:
        """Wait for events, then take all of them."""
        await self._ready.wait()
        self._ready.clear()
        batch = list(self._pending.values())
        self._pending.clear()
        return batch


class WebSurface:
    """Implements :class:`bot.surface.Surface` for the playground's ``web`` jobs."""

    name = "web"
    # The web serves stored originals from /img, so nothing needs re-encoding to fit a limit.
    upload_limit_bytes = 1 << 40
    # One file is all the delivery builder makes for us: the grid it could add is never shown here.
    max_files = 1
    throttle: ThrottlePolicy = WEB_THROTTLE

    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscription]] = {}
        #: The newest frame of each unfinished job, for pages opened while it runs.
        self._live: dict[str, dict[str, Any]] = {}

    # --- Surface --------------------------------------------------------------------------------
    async def show(self, card: Card) -> dict[str, str] | None:
        event = card_json(card)
        if card.final:
            self._live.pop(card.job.id, None)
        else:
            self._live[card.job.id] = event
        self.publish(card.job.origin.channel_id, f"card:{card.job.id}", event)
        return None

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        job = delivery.job
        self.publish(job.origin.channel_id, f"images:{job.id}", images_event(job, delivery.images))
        return None

    # --- subscribers -----------------------------------------------------------------------------
    def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(channel)
        self._subscribers.setdefault(channel, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.channel)
        if subscribers is None:
            return
        subscribers.discard(subscription)
        if not subscribers:
            del self._subscribers[subscription.channel]

    def publish(self, channel: str, key: str, event: dict[str, Any]) -> None:
        """Send an event to every page watching ``channel``."""
        for subscription in list(self._subscribers.get(channel, ())):
            subscription.offer(key, event)

    def live_frame(self, job_id: str) -> dict[str, Any] | None:
        """The newest frame shown for an unfinished job, if it has one."""
        return self._live.get(job_id)

    def watchers(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))
