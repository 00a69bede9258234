"""The Socket Mode transport: a websocket from the bot to Slack, no public address needed.

``apps.connections.open`` (with the app-level ``xapp-`` token) hands out the websocket URL; it
goes through the Web API client, so ``[slack] api_base_url`` moves it too. The first URL is asked
for here, so a bad app token is a clear config error rather than an endless reconnect loop;
slack_sdk's client asks for fresh ones when it reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.surface import slack_error
from bot.errors import ConfigError

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_SECONDS = 30.0
#: Seconds between websocket pings (slack_sdk reconnects after four missed answers).
PING_INTERVAL_SECONDS = 10.0


async def open_url(client: AsyncWebClient, app_token: str) -> str:
    """A websocket URL from ``apps.connections.open``; a refused app token is a config error."""
    try:
        opened = await client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        raise ConfigError(
            f"Slack refused [slack] app_token ({slack_error(exc)}); it needs the connections:write scope"
        ) from exc
    return str(opened["url"])


async def connect(
    bolt: AsyncApp, client: AsyncWebClient, app_token: str, url: str, *,
    ping_interval: float = PING_INTERVAL_SECONDS,
) -> Callable[[], Awaitable[None]]:
    """Open the Socket Mode connection for ``bolt`` at ``url``; returns the function that closes it."""
    handler = AsyncSocketModeHandler(bolt, app_token, web_client=client, ping_interval=ping_interval)
    handler.client.wss_uri = url

    async def close() -> None:
        await handler.close_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated

    try:
        await asyncio.wait_for(handler.connect_async(), CONNECT_TIMEOUT_SECONDS)  # type: ignore[no-untyped-call]
    except TimeoutError as exc:
        await close()
        raise ConfigError(f"no Socket Mode connection to Slack within {CONNECT_TIMEOUT_SECONDS:.0f} s") from exc
    except BaseException:
        await close()
        raise
    log.info("slack: connected in Socket Mode")
    return close
