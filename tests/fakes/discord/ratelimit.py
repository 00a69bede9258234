"""Per-route, per-resource rate limits with Discord's headers and realistic 429s.

Each route belongs to a bucket (``limit`` requests per ``window`` seconds) keyed on its major
resource: the channel, or the webhook and its token. Windows start with their first request
(fixed windows, as Discord's buckets behave) and can be scaled down for fast tests. Every response
carries ``X-RateLimit-*`` headers that tell the truth, so a client that obeys them never sees a 429.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Limit:
    bucket: str
    limit: int
    window: float


#: Observed or documented values (see research/platforms.md §2); a route not listed is unlimited.
LIMITS: dict[str, Limit] = {
    "POST /channels/{channel_id}/messages": Limit("messages-create", 5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": Limit("messages-edit", 5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": Limit("messages-delete", 5, 1.0),
    "POST /channels/{channel_id}/messages/{message_id}/threads": Limit("threads-create", 5, 5.0),
    "PUT /channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me": Limit("reactions", 1, 0.25),
    "POST /webhooks/{webhook_id}/{webhook_token}": Limit("webhook", 5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": Limit("webhook", 5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": Limit("webhook", 5, 2.0),
}


@dataclass
class _Window:
    started: float
    count: int = 0


@dataclass
class Verdict:
    allowed: bool
    headers: dict[str, str]
    retry_after: float = 0.0


@dataclass
class RateLimiter:
    """Counts requests per (bucket, resource); ``scale`` shrinks every window (tests)."""

    scale: float = 1.0
    windows: dict[tuple[str, str], _Window] = field(default_factory=dict)
    rejected: int = 0

    def check(self, route: str, resource: str) -> Verdict:
        limit = LIMITS.get(route)
        if limit is None:
            return Verdict(True, {})
        window_seconds = limit.window * self.scale
        now = time.monotonic()
        key = (limit.bucket, resource)
        window = self.windows.get(key)
        if window is None or now >= window.started + window_seconds:
            window = self.windows[key] = _Window(now)
        reset_after = window.started + window_seconds - now
        headers = {
            "X-RateLimit-Limit": str(limit.limit),
            "X-RateLimit-Bucket": hashlib.sha1(limit.bucket.encode()).hexdigest()[:16],
            "X-RateLimit-Reset-After": f"{math.ceil(reset_after * 1000) / 1000:.3f}",
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        }
        if window.count >= limit.limit:
            self.rejected += 1
            headers.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Scope": "user",
                            "Retry-After": str(max(1, math.ceil(reset_after)))})
            return Verdict(False, headers, reset_after)
        window.count += 1
        headers["X-RateLimit-Remaining"] = str(limit.limit - window.count)
        return Verdict(True, headers)


def too_many_requests_body(retry_after: float) -> bytes:
    # discord.py retries only a 429 that has a JSON body and a Via header (else it assumes a ban).
    return json.dumps({"message": "You are being rate limited.", "retry_after": round(retry_after, 3),
                       "global": False, "code": 0}).encode()
