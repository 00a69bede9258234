"""What every Discord handler needs, built once in :func:`adapters.discord.bot.start_discord`."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from adapters.discord.lookup import MessageIndex
from adapters.discord.surface import DiscordSurface
from bot.app import App
from bot.config import DiscordConfig
from bot.links import GalleryLinks
from bot.service import ImagineService


@dataclass
class DiscordContext:
    """The app, the Discord config, the surface and the message index, shared by all handlers."""

    app: App
    client: discord.Client
    config: DiscordConfig
    links: GalleryLinks
    surface: DiscordSurface
    index: MessageIndex

    @property
    def service(self) -> ImagineService:
        return self.app.service


def context_of(client: discord.Client) -> DiscordContext:
    """The context attached to one of our clients (see :mod:`adapters.discord.client`)."""
    ctx = getattr(client, "imagine", None)
    if not isinstance(ctx, DiscordContext):
        raise RuntimeError("this discord client was not built by adapters.discord")
    return ctx
