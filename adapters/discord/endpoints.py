"""Pointing discord.py at another REST base or gateway (an operator's proxy, or a test fake).

This is the only module that touches discord.py internals. discord.py has no per-client option for
either address: every REST route (webhook and interaction routes included) is built from the class
attribute ``discord.http.Route.BASE``, and a plain ``Client`` opens its first gateway connection to
``DiscordWebSocket.DEFAULT_GATEWAY`` (resumes go to READY's ``resume_gateway_url``, which the
gateway itself hands out). Both are process-wide, so :func:`point_at` returns a function that puts
the previous values back; one process runs one Discord client.
"""

from __future__ import annotations

from collections.abc import Callable

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route


def point_at(api_base_url: str | None, gateway_url: str | None) -> Callable[[], None]:
    """Use ``api_base_url`` (with its ``/api/v10``) and ``gateway_url`` where set; returns an undo."""
    saved_base, saved_gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    if api_base_url:
        Route.BASE = api_base_url.rstrip("/")
    if gateway_url:
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)

    def restore() -> None:
        Route.BASE = saved_base
        DiscordWebSocket.DEFAULT_GATEWAY = saved_gateway

    return restore
