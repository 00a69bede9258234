"""Who asked, and where: Discord interactions and reactions as core :class:`~bot.jobs.Origin`.

In a thread, ``channel_id`` is the parent channel (galleries, history and limits are per channel)
and ``thread_id`` the thread. Admins are members with Manage Server or Administrator.
"""

from __future__ import annotations

import discord

from bot.jobs import Origin

PLATFORM = "discord"


def origin_from_interaction(interaction: discord.Interaction) -> Origin:
    """The origin of a slash command, context menu or button press."""
    user = interaction.user
    channel = interaction.channel
    channel_id = str(interaction.channel_id or 0)
    thread_id = None
    if isinstance(channel, discord.Thread):
        thread_id, channel_id = str(channel.id), str(channel.parent_id)
    perms = interaction.permissions
    return Origin(
        platform=PLATFORM,
        server_id=str(interaction.guild_id or f"dm-{user.id}"),
        channel_id=channel_id,
        thread_id=thread_id,
        user_id=str(user.id),
        user_name=user.display_name,
        roles=_roles(user),
        is_admin=perms.administrator or perms.manage_guild,
        nsfw_channel=_nsfw(channel),
    )


def origin_from_reaction(
    payload: discord.RawReactionActionEvent, channel: discord.abc.GuildChannel | discord.Thread | None
) -> Origin | None:
    """The origin of a reaction in a server; None in DMs or without the member's data."""
    member = payload.member
    if payload.guild_id is None or member is None:
        return None
    channel_id, thread_id = str(payload.channel_id), None
    if isinstance(channel, discord.Thread):
        thread_id, channel_id = str(channel.id), str(channel.parent_id)
    perms = member.guild_permissions
    return Origin(
        platform=PLATFORM,
        server_id=str(payload.guild_id),
        channel_id=channel_id,
        thread_id=thread_id,
        user_id=str(member.id),
        user_name=member.display_name,
        roles=_roles(member),
        is_admin=perms.administrator or perms.manage_guild,
        nsfw_channel=_nsfw(channel),
    )


def _roles(user: discord.User | discord.Member) -> frozenset[str]:
    if not isinstance(user, discord.Member):
        return frozenset()
    # Limits may be keyed by role id or by role name.
    return frozenset(
        key for role in user.roles if not role.is_default() for key in (str(role.id), role.name)
    )


def _nsfw(channel: object) -> bool:
    is_nsfw = getattr(channel, "is_nsfw", None)
    return bool(is_nsfw()) if callable(is_nsfw) else False
