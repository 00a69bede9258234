"""Starting the Discord surface: ``start_discord(app)`` for ``imaginebot run``.

It points discord.py at the configured endpoints, builds the client and the surface, adds the
surface to the app, logs in (which registers and syncs the commands) and connects the gateway in
the background. The returned function closes the connection and undoes the endpoint change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import discord

from adapters.discord import render
from adapters.discord.client import ImagineClient, ShardedImagineClient, intents
from adapters.discord.context import DiscordContext
from adapters.discord.endpoints import point_at
from adapters.discord.lookup import MessageIndex
from adapters.discord.surface import DiscordSurface
from bot.app import App
from bot.errors import ConfigError
from bot.links import GalleryLinks
from bot.surface import DISCORD_THROTTLE, ThrottlePolicy

log = logging.getLogger(__name__)

#: Longest a rate-limit wait may be before a request fails instead (discord.py's minimum is 30 s).
MAX_RATELIMIT_WAIT_SECONDS = 30.0
MIB = 1024 * 1024

Client = ImagineClient | ShardedImagineClient


@dataclass
class RunningDiscord:
    """A started client, its context, and how to stop it."""

    client: Client
    context: DiscordContext
    close: Callable[[], Awaitable[None]]


def build_client(app: App, *, throttle: ThrottlePolicy = DISCORD_THROTTLE, **options: Any) -> Client:
    """The client with its context and surface (not connected); ``options`` go to discord.py."""
    config = app.config.discord
    client: Client
    common: dict[str, Any] = {
        "intents": intents(), "max_messages": None, "chunk_guilds_at_startup": False,
        "max_ratelimit_timeout": MAX_RATELIMIT_WAIT_SECONDS, "allowed_mentions": render.NO_PINGS,
    }
    if config.shard_count is not None:
        if config.shard_ids is not None:
            common["shard_ids"] = config.shard_ids
        client = ShardedImagineClient(shard_count=config.shard_count, **common, **options)
    else:
        client = ImagineClient(**common, **options)
    index = MessageIndex(client)
    surface = DiscordSurface(
        client, index=index, thread_mode=config.thread_mode, reactions=config.reactions,
        upload_limit_bytes=int(config.upload_limit_mb * MIB), throttle=throttle,
    )
    client.imagine = DiscordContext(
        app=app, client=client, config=config, links=GalleryLinks.from_config(app.config),
        surface=surface, index=index,
    )
    return client


async def launch(app: App, *, throttle: ThrottlePolicy = DISCORD_THROTTLE, **options: Any) -> RunningDiscord:
    """Log in, add the surface to ``app`` and connect in the background."""
    config = app.config.discord
    if config.token is None:
        raise ConfigError("discord.token is not set")
    restore = point_at(config.api_base_url, config.gateway_url)
    client = build_client(app, throttle=throttle, **options)
    app.add_surface(client.imagine.surface)
    try:
        await client.login(config.token.get_secret_value())
    except discord.LoginFailure as exc:
        await client.close()
        restore()
        raise ConfigError("Discord refused discord.token; check it in the developer portal") from exc
    except BaseException:
        await client.close()
        restore()
        raise
    task = asyncio.create_task(client.connect(reconnect=True), name="discord-gateway")
    task.add_done_callback(_report_end)

    async def close() -> None:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        restore()

    return RunningDiscord(client=client, context=client.imagine, close=close)


async def start_discord(app: App) -> Callable[[], Awaitable[None]]:
    """Entry point for ``imaginebot run`` (see ``bot.cli.SURFACE_STARTERS``)."""
    return (await launch(app)).close


def _report_end(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    exc = task.exception()
    if exc is not None:
        log.error("the Discord connection ended: %s", exc.__class__.__name__, exc_info=exc)
