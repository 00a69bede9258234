"""Pacing ``chat.postMessage``: Slack allows about one message per second per channel, with short bursts.

The core's throttle paces card *edits*; new messages (placeholders, cards of batch jobs) are
paced here, per channel, so a burst of commands in one channel never meets a 429. It is a
virtual-scheduling token bucket on the injected clock: a channel may post ``burst`` messages at
once, then one every ``interval`` seconds; callers wait their turn in arrival order.
"""

from __future__ import annotations

from bot.clock import Clock

#: Channels remembered at most; entries whose slot has passed are dropped first.
MAX_CHANNELS = 4096


class PostPacer:
    """Waits until a channel may take another message."""

    def __init__(self, clock: Clock, *, interval: float = 1.0, burst: int = 3) -> None:
        if interval < 0 or burst < 1:
            raise ValueError("the pacer needs interval >= 0 and burst >= 1")
        self._clock = clock
        self._interval = interval
        self._burst = burst
        #: Per channel, when the bucket is empty again (theoretical arrival time).
        self._due: dict[str, float] = {}

    async def wait(self, channel: str) -> None:
        """Return when a message may be posted to ``channel`` (the slot is taken on return)."""
        now = self._clock.monotonic()
        due = max(self._due.get(channel, now), now)
        start = due - (self._burst - 1) * self._interval
        self._due[channel] = due + self._interval
        if len(self._due) > MAX_CHANNELS:
            self._forget(now)
        if start > now:
            await self._clock.sleep(start - now)

    def _forget(self, now: float) -> None:
        for channel in [c for c, due in self._due.items() if due <= now]:
            del self._due[channel]
