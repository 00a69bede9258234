"""Slack's rate limits, with real 429s (``Retry-After`` in whole seconds, ``error: ratelimited``).

Web API limits are per method and per workspace (research/platforms.md §6): Tier 1 1+ a minute,
Tier 2 20+, Tier 3 50+, Tier 4 100+; ``chat.postMessage`` is special: about one message a second
per channel, with short bursts. Windows slide; the post limit is a token bucket. ``scale``
shrinks every window (fast tests) and keeps the ratios.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

TIER1, TIER2, TIER3, TIER4 = 1, 20, 50, 100

#: Requests per minute per workspace; methods not listed are not limited.
PER_MINUTE: dict[str, int] = {
    "auth.test": TIER4,
    # Tier 1 on paper; the fake lets a restarting test reconnect a few times in a (scaled) minute.
    "apps.connections.open": 5,
    "chat.update": TIER3,
    "chat.delete": TIER3,
    "chat.postEphemeral": TIER4,
    "conversations.replies": TIER3,
    "conversations.open": TIER3,
    "users.info": TIER4,
    "views.open": TIER4,
    "views.publish": TIER4,
    "files.getUploadURLExternal": TIER4,
    "files.completeUploadExternal": TIER4,
    "files.delete": TIER3,
}
#: chat.postMessage: a bucket of this many messages per channel, refilled at one per second.
POST_BURST = 4
POST_PER_SECOND = 1.0


@dataclass
class Verdict:
    allowed: bool
    retry_after: int = 0


@dataclass
class RateLimiter:
    """Counts requests; ``rejected`` is every 429 it answered."""

    scale: float = 1.0
    windows: dict[str, deque[float]] = field(default_factory=dict)
    buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # channel -> (tokens, at)
    rejected: int = 0
    rejected_methods: list[str] = field(default_factory=list)

    def check(self, method: str, channel: str | None) -> Verdict:
        now = time.monotonic()
        if method == "chat.postMessage" and channel:
            verdict = self._bucket(channel, now)
        elif method in PER_MINUTE:
            verdict = self._window(method, PER_MINUTE[method], now)
        else:
            verdict = Verdict(True)
        if not verdict.allowed:
            self.rejected += 1
            self.rejected_methods.append(method)
        return verdict

    def _window(self, method: str, limit: int, now: float) -> Verdict:
        span = 60.0 * self.scale
        sent = self.windows.setdefault(method, deque())
        while sent and sent[0] <= now - span:
            sent.popleft()
        if len(sent) >= limit:
            return Verdict(False, max(1, math.ceil(sent[0] + span - now)))
        sent.append(now)
        return Verdict(True)

    def _bucket(self, channel: str, now: float) -> Verdict:
        rate = POST_PER_SECOND / self.scale
        tokens, at = self.buckets.get(channel, (float(POST_BURST), now))
        tokens = min(float(POST_BURST), tokens + (now - at) * rate)
        if tokens < 1.0:
            self.buckets[channel] = (tokens, now)
            return Verdict(False, max(1, math.ceil((1.0 - tokens) / rate)))
        self.buckets[channel] = (tokens - 1.0, now)
        return Verdict(True)
