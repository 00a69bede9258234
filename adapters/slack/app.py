"""Starting the Slack surface: ``start_slack(app)`` for ``imaginebot run``.

One bolt ``AsyncApp`` serves both transports: Socket Mode when ``[slack] app_token`` is set,
otherwise signed HTTP requests at ``/slack/events`` on the web server (which ``imaginebot run``
starts first). The Web API client honours Slack's 429s (``Retry-After``) and goes to
``[slack] api_base_url`` when set. ``auth.test`` runs once, first: a bad bot token is a config
error, and its answer names the bot user (whose own reactions are ignored) and authorizes every
request, so bolt never calls ``auth.test`` again (it would, once per request, in a first burst).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from adapters.slack import http, socket_mode
from adapters.slack.context import SlackContext
from adapters.slack.dedup import EventDeduplication
from adapters.slack.identity import Identity
from adapters.slack.listeners import register
from adapters.slack.lookup import MessageIndex
from adapters.slack.pacing import PostPacer
from adapters.slack.surface import MIB, SlackSurface, slack_error
from adapters.web.server import mounts_of
from bot.app import App
from bot.errors import ConfigError
from bot.links import GalleryLinks
from bot.surface import SLACK_THROTTLE, ThrottlePolicy

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://slack.com/api/"
#: Retries of a 429 (each after its Retry-After) before a call fails.
RATE_LIMIT_RETRIES = 3
CLOSE_GRACE_SECONDS = 5.0


@dataclass
class RunningSlack:
    """A started Slack surface: its context, the bolt app, the transport in use, and how to stop it."""

    context: SlackContext
    bolt: AsyncApp
    transport: str  # "socket" or "http"
    dedup: EventDeduplication
    close: Callable[[], Awaitable[None]]


def build_client(app: App, session: aiohttp.ClientSession, *, token: str | None) -> AsyncWebClient:
    """A Web API client on ``session`` that waits out 429s (Retry-After) and retries dropped connections."""
    return AsyncWebClient(
        token=token,
        base_url=app.config.slack.api_base_url or DEFAULT_API_BASE_URL,
        session=session,
        retry_handlers=[AsyncConnectionErrorRetryHandler(),
                        AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES)],
        logger=logging.getLogger("adapters.slack.web_api"),
    )


async def launch(
    app: App, *, throttle: ThrottlePolicy = SLACK_THROTTLE, post_interval: float = 1.0,
    ping_interval: float = socket_mode.PING_INTERVAL_SECONDS,
) -> RunningSlack:
    """Check the token, add the surface to ``app`` and connect the transport."""
    config = app.config.slack
    if config.bot_token is None:
        raise ConfigError("slack.bot_token is not set")
    if config.app_token is None:
        if config.signing_secret is None:
            raise ConfigError("Slack over HTTP needs [slack] signing_secret (or set app_token for Socket Mode)")
        http.check_mounts(mounts_of(app))
    session = aiohttp.ClientSession()
    try:
        running = await _start(app, session, throttle=throttle, post_interval=post_interval,
                               ping_interval=ping_interval)
    except BaseException:
        await session.close()
        raise
    return running


async def _start(
    app: App, session: aiohttp.ClientSession, *, throttle: ThrottlePolicy, post_interval: float,
    ping_interval: float,
) -> RunningSlack:
    config = app.config.slack
    assert config.bot_token is not None
    client = build_client(app, session, token=config.bot_token.get_secret_value())
    me = await _whoami(client)
    index = MessageIndex(client)
    surface = SlackSurface(client, pacer=PostPacer(app.clock, interval=post_interval), index=index,
                           upload_limit_bytes=int(config.upload_limit_mb * MIB), throttle=throttle)
    ctx = SlackContext(
        app=app, config=config, client=client, session=session, surface=surface,
        identity=Identity(client, app.clock), index=index, links=GalleryLinks.from_config(app.config),
        bot_user_id=str(me.get("user_id")), team_id=str(me.get("team_id")),
    )
    bolt = _bolt(app, session, me)
    dedup = register(bolt, ctx)
    token = config.app_token.get_secret_value() if config.app_token is not None else None
    url = None if token is None else await socket_mode.open_url(client, token)
    # Before connecting: the first command may queue a job at once, and its card needs the surface.
    app.add_surface(surface)
    if token is not None and url is not None:
        transport = "socket"
        disconnect = await socket_mode.connect(bolt, client, token, url, ping_interval=ping_interval)
    else:
        transport = "http"
        unmount = http.add_routes(http.check_mounts(mounts_of(app)), http.events_handler(bolt))

        async def disconnect() -> None:
            unmount()

    log.info("slack: serving workspace %s as %s over %s", ctx.team_id, ctx.bot_user_id, transport)

    async def close() -> None:
        await disconnect()
        await ctx.aclose(CLOSE_GRACE_SECONDS)
        await session.close()

    return RunningSlack(context=ctx, bolt=bolt, transport=transport, dedup=dedup, close=close)


def _bolt(app: App, session: aiohttp.ClientSession, me: AsyncSlackResponse) -> AsyncApp:
    """The bolt app: it checks signatures (HTTP) and authorizes every request from ``me``."""
    config = app.config.slack
    assert config.bot_token is not None
    authorized = AuthorizeResult.from_auth_test_response(bot_token=config.bot_token.get_secret_value(),
                                                         auth_test_response=me)

    async def authorize() -> AuthorizeResult:
        return authorized

    secret = config.signing_secret.get_secret_value() if config.signing_secret is not None else ""
    # Bolt's client carries no token of its own: each request's copy gets it from ``authorize``.
    return AsyncApp(client=build_client(app, session, token=None), authorize=authorize, signing_secret=secret,
                    name="imaginebot", logger=logging.getLogger("adapters.slack.bolt"))


async def _whoami(client: AsyncWebClient) -> AsyncSlackResponse:
    try:
        return await client.auth_test()
    except SlackApiError as exc:
        raise ConfigError(f"Slack refused [slack] bot_token ({slack_error(exc)}); check it") from exc


async def start_slack(app: App) -> Callable[[], Awaitable[None]]:
    """Entry point for ``imaginebot run`` (see ``bot.cli.SURFACE_STARTERS``)."""
    return (await launch(app)).close
