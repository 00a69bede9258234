"""The discord.py clients: a plain one, and an auto-sharded one for large bots.

Both carry the :class:`~adapters.discord.context.DiscordContext` as ``imagine`` and share their
hooks: commands and persistent buttons are registered in ``setup_hook`` (commands are synced per
development guild, or globally), and raw reactions go to :mod:`.reactions`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import discord
from discord import app_commands

from adapters.discord import actions, render
from adapters.discord.browse import BROWSE_COMMANDS
from adapters.discord.commands import JOB_COMMANDS
from adapters.discord.components import JobButton
from adapters.discord.context import DiscordContext
from adapters.discord.reactions import on_reaction
from bot import messages

log = logging.getLogger(__name__)

#: Seconds between IDENTIFYs of this process's shards (Discord allows max_concurrency per 5 s).
IDENTIFY_INTERVAL_SECONDS = 5.0


def intents() -> discord.Intents:
    """Only non-privileged intents: guilds, and reactions in guilds and DMs."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_reactions = True
    wanted.dm_reactions = True
    return wanted


class _Hooks:
    """What both client classes add to discord.py's."""

    imagine: DiscordContext
    tree: app_commands.CommandTree[Any]
    identify_interval: float = IDENTIFY_INTERVAL_SECONDS

    async def setup_hook(self) -> None:
        client = self._client()
        self.tree = build_tree(client)
        client.add_dynamic_items(JobButton)
        if self.imagine.config.sync_commands:
            await sync_commands(self.tree, self.imagine.config.dev_guild_ids)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await on_reaction(self._client(), payload)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        if not initial:
            await asyncio.sleep(self.identify_interval)

    def _client(self) -> discord.Client:
        assert isinstance(self, discord.Client)
        return self


class ImagineClient(_Hooks, discord.Client):
    """One gateway connection (below about 1000 servers)."""


class ShardedImagineClient(_Hooks, discord.AutoShardedClient):
    """``shard_count`` shards in all, running ``shard_ids`` (default: all) in this process."""


def build_tree(client: discord.Client) -> app_commands.CommandTree[Any]:
    tree: app_commands.CommandTree[Any] = app_commands.CommandTree(client)
    for command in (*JOB_COMMANDS, *BROWSE_COMMANDS):
        tree.add_command(command)
    tree.on_error = on_tree_error  # type: ignore[method-assign]
    return tree


async def sync_commands(tree: app_commands.CommandTree[Any], guild_ids: list[str]) -> None:
    """Development guilds get the commands at once; without them they are synced globally."""
    if not guild_ids:
        await tree.sync()
        return
    for guild_id in guild_ids:
        guild = discord.Object(id=int(guild_id))
        tree.copy_global_to(guild=guild)
        await tree.sync(guild=guild)


async def on_tree_error(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
    """A bug or an unexpected platform error: logged, and a polite private answer."""
    log.error("command %s failed", getattr(interaction.command, "name", "?"), exc_info=error)
    try:
        if interaction.response.is_done():
            await actions.retract(interaction, messages.SOMETHING_WENT_WRONG)
        else:
            await interaction.response.send_message(render.notice(messages.SOMETHING_WENT_WRONG), ephemeral=True)
    except discord.HTTPException:
        log.info("could not tell the user about the failure")
