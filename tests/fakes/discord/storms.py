"""Storms a test can raise on the fake's REST API: bursts of 429s or 5xx answers, then calm.

``fake.storm(status, count)`` answers the next ``count`` matching requests with ``status`` instead
of handling them: 429 the way Discord sends it (JSON body with ``retry_after``, ``Retry-After``,
``Via`` so discord.py honours it, ``X-RateLimit-Global`` for a global limit), or a 5xx with an
error body. Requests that match no storm are served normally; a storm whose count is used up
is over. By default a storm hits the bot-token routes (messages, threads, reactions), not the
interaction callback or webhooks, whose 3-second and 15-minute rules other tests cover.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web


@dataclass
class Storm:
    """The next ``count`` requests to ``routes`` (route keys; None: every bot-token route) get ``status``."""

    status: int
    count: int
    routes: frozenset[str] | None = None
    retry_after: float = 0.05
    is_global: bool = False
    hits: int = 0

    def matches(self, route: str) -> bool:
        if self.hits >= self.count:
            return False
        if self.routes is not None:
            return route in self.routes
        _, _, path = route.partition(" ")
        return not path.startswith(("/interactions", "/webhooks"))

    def answer(self) -> web.Response:
        self.hits += 1
        if self.status == 429:
            body = {"message": "You are being rate limited.", "retry_after": self.retry_after,
                    "global": self.is_global, "code": 0}
            headers = {"Retry-After": f"{max(self.retry_after, 0.001):.3f}", "Via": "1.1 google",
                       "X-RateLimit-Scope": "global" if self.is_global else "user"}
            if self.is_global:
                headers["X-RateLimit-Global"] = "true"
            return web.Response(status=429, body=json.dumps(body).encode(), headers=headers,
                                content_type="application/json")
        body = {"message": f"{self.status}: Service unavailable", "code": 0}
        return web.Response(status=self.status, body=json.dumps(body).encode(), content_type="application/json")


def first_match(storms: list[Storm], route: str) -> Storm | None:
    return next((storm for storm in storms if storm.matches(route)), None)
