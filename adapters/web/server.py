"""The web server: builds the aiohttp application and runs it for ``imaginebot run``.

:func:`start_web` adds the :class:`WebSurface` to the app, wires :class:`~bot.metrics.Metrics`
into the engine's hooks, and serves on ``[web] host:port`` (127.0.0.1:8080 by default).

Other adapters serve their webhooks on the same server (Slack's ``/slack/events``) through
:class:`Mounts`: ``mounts_of(app)`` finds the running server's table, and a path added there is
answered by its handler. aiohttp freezes its router when the server starts, and ``imaginebot run``
starts the web server before the chat adapters, so mounted paths are matched by a middleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import WSCloseCode, web
from aiohttp.typedefs import Handler

from adapters.web import api, gallery, images, ops, static
from adapters.web.edge import add_security_headers, friendly_errors
from adapters.web.state import STATE, WebState
from adapters.web.surface import WebSurface
from bot.app import App
from bot.errors import ConfigError
from bot.links import GalleryLinks
from bot.metrics import Metrics

log = logging.getLogger(__name__)

#: Requests carry prompts and small JSON bodies only.
MAX_BODY_BYTES = 64 * 1024


class Mounts:
    """Paths other adapters serve on the running web server, each with its own handler."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def add(self, path: str, handler: Handler) -> Callable[[], None]:
        """Serve ``path`` (every method) with ``handler``; returns the function that removes it."""
        if path in self._handlers:
            raise ValueError(f"{path} is already mounted")
        self._handlers[path] = handler
        return lambda: self._remove(path, handler)

    def _remove(self, path: str, handler: Handler) -> None:
        if self._handlers.get(path) is handler:
            del self._handlers[path]

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        mounted = self._handlers.get(request.path)
        return await (handler if mounted is None else mounted)(request)


class ServedSurface(WebSurface):
    """The web surface of a server started by :func:`start_web`, with the server's mounts."""

    def __init__(self) -> None:
        super().__init__()
        self.mounts = Mounts()


def mounts_of(app: App) -> Mounts | None:
    """The running web server's mounts, or None when this app serves no web surface."""
    surface = app.surfaces.get("web")
    return surface.mounts if isinstance(surface, ServedSurface) else None


def create_web_app(
    app: App, *, surface: WebSurface, links: GalleryLinks, metrics: Metrics
) -> web.Application:
    """The aiohttp application for an already-built bot ``app`` (the surface must be added to it)."""
    middlewares = [friendly_errors]
    if isinstance(surface, ServedSurface):
        middlewares.append(surface.mounts.middleware)
    web_app = web.Application(middlewares=middlewares, client_max_size=MAX_BODY_BYTES)
    web_app[STATE] = WebState(app=app, surface=surface, links=links, metrics=metrics)
    web_app.on_response_prepare.append(add_security_headers)
    web_app.on_shutdown.append(_close_sockets)
    for module in (static, api, gallery, images, ops):
        module.setup(web_app)
    return web_app


async def _close_sockets(web_app: web.Application) -> None:
    for ws in list(web_app[STATE].sockets):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def attach(app: App) -> tuple[WebSurface, GalleryLinks, Metrics]:
    """Add the web surface and metrics to ``app``; returns what :func:`create_web_app` takes."""
    surface = ServedSurface()
    app.add_surface(surface)
    return surface, GalleryLinks.from_config(app.config), Metrics.attach(app)


async def start_web(app: App) -> Callable[[], Awaitable[None]]:
    """Serve the playground, galleries, health and metrics; returns the function that stops it."""
    surface, links, metrics = attach(app)
    web_app = create_web_app(app, surface=surface, links=links, metrics=metrics)
    runner = web.AppRunner(web_app, access_log=None, shutdown_timeout=5.0)
    await runner.setup()
    config = app.config.web
    site = web.TCPSite(runner, config.host, config.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"the web playground cannot listen on {config.host}:{config.port} ({exc.strerror or exc}); "
            "set another [web] port, or enabled = false"
        ) from exc
    for address in runner.addresses:
        host, port = address[0], address[1]
        shown = f"[{host}]" if ":" in host else host
        log.info("web playground: open http://%s:%s", shown, port)

    async def close() -> None:
        await runner.cleanup()

    return close
