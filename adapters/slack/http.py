"""The HTTP transport: Slack's signed requests at ``/slack/events`` on the web server.

:func:`events_handler` turns an aiohttp request into bolt's and back; bolt checks the
signature of every request (``X-Slack-Signature`` over ``v0:{timestamp}:{body}`` with the signing
secret) and refuses stale ones (over 300 s) with 401 before any listener runs. :func:`add_routes`
serves it on the running web server (:mod:`adapters.web.server`'s mounts), so one port serves
the playground, galleries and Slack.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Handler
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from adapters.web.server import Mounts
from bot.errors import ConfigError

EVENTS_PATH = "/slack/events"


def events_handler(bolt: AsyncApp) -> Handler:
    """The aiohttp handler for Slack's events, commands and interactivity (POST only)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            raise web.HTTPMethodNotAllowed(request.method, ["POST"])
        response = await bolt.async_dispatch(await to_bolt_request(request))
        return await to_aiohttp_response(response)

    return handle


def check_mounts(mounts: Mounts | None) -> Mounts:
    """The web server's mounts, or a config error saying how to serve Slack's events."""
    if mounts is None:
        raise ConfigError(
            "Slack without [slack] app_token receives its events over HTTP at /slack/events on the web "
            "server: enable [web] (and make it reachable from Slack), or set app_token for Socket Mode"
        )
    return mounts


def add_routes(mounts: Mounts, handler: Handler) -> Callable[[], None]:
    """Serve ``handler`` at ``/slack/events`` on the running web server; returns the undo."""
    return mounts.add(EVENTS_PATH, handler)
