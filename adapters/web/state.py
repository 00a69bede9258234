"""What every web handler needs, kept on the aiohttp application (never in module globals)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from adapters.web.surface import WebSurface
from bot.app import App
from bot.links import GalleryLinks
from bot.metrics import Metrics


@dataclass
class WebState:
    app: App
    surface: WebSurface
    links: GalleryLinks
    metrics: Metrics
    #: Open WebSockets, closed when the server shuts down so their handlers end promptly.
    sockets: set[web.WebSocketResponse] = field(default_factory=set)
    #: (monotonic time, per-provider health) of the last provider health check.
    health_cache: tuple[float, dict[str, dict[str, Any]]] | None = None


STATE = web.AppKey("imaginebot_state", WebState)


def state_of(request: web.Request) -> WebState:
    return request.app[STATE]
