"""What the fake Discord remembers: guilds, channels, threads, messages, attachments, reactions,
interactions; and the payload shapes it returns (the fields the spec requires)."""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DISCORD_EPOCH_MS = 1_420_070_400_000
#: Permission bits used here.
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
EVERYONE_PERMISSIONS = (1 << 6) | (1 << 10) | (1 << 11) | (1 << 16) | (1 << 35) | (1 << 38) | (1 << 31)
EPHEMERAL = 1 << 6
LOADING = 1 << 7


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class Snowflakes:
    """Time-ordered, unique snowflake ids (as strings)."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)

    def next(self) -> str:
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        return str((ms << 22) | (next(self._seq) & 0x3FFFFF))


@dataclass
class Channel:
    id: str
    guild_id: str | None
    name: str
    type: int = 0  # 0 text, 1 DM, 11 public thread
    nsfw: bool = False
    parent_id: str | None = None
    #: Whether the bot may start threads here (False: 403 Missing Permissions).
    threads_allowed: bool = True
    recipient_id: str | None = None
    owner_id: str | None = None


@dataclass
class Attachment:
    id: str
    filename: str
    data: bytes
    content_type: str
    url: str


@dataclass
class Message:
    id: str
    channel_id: str
    author: dict[str, Any]
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    created: float = 0.0
    edited: float | None = None
    webhook_id: str | None = None
    #: emoji name -> user ids that reacted.
    reactions: dict[str, list[str]] = field(default_factory=dict)
    deleted: bool = False
    allowed_mentions: dict[str, Any] | None = None
    thread_id: str | None = None


@dataclass
class Interaction:
    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user_id: str
    created_real: float
    created_fake: float
    responded: float | None = None
    callback_type: int | None = None
    original_id: str | None = None
    ephemeral: bool = False
    autocomplete: list[dict[str, Any]] | None = None
    #: The message a component was pressed on.
    message_id: str | None = None


@dataclass
class Member:
    user: dict[str, Any]
    roles: list[str] = field(default_factory=list)
    permissions: int = EVERYONE_PERMISSIONS


def user_payload(user_id: str, name: str, *, bot: bool = False) -> dict[str, Any]:
    return {
        "id": user_id, "username": name, "global_name": name, "discriminator": "0", "avatar": None,
        "public_flags": 0, "flags": 0, "bot": bot, "primary_guild": None,
    }


def member_payload(member: Member, *, now: float) -> dict[str, Any]:
    return {
        "user": member.user, "roles": list(member.roles), "joined_at": iso(now - 86400), "deaf": False,
        "mute": False, "flags": 0, "pending": False, "nick": None, "avatar": None, "banner": None,
        "premium_since": None, "communication_disabled_until": None, "permissions": str(member.permissions),
    }


def channel_payload(channel: Channel) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": channel.id, "type": channel.type, "name": channel.name, "flags": 0, "position": 0,
        "permission_overwrites": [], "nsfw": channel.nsfw, "parent_id": channel.parent_id,
        "rate_limit_per_user": 0, "topic": None, "last_message_id": None,
    }
    if channel.guild_id is not None:
        data["guild_id"] = channel.guild_id
    if channel.type == 11:
        data.update({
            "owner_id": channel.owner_id, "message_count": 0, "member_count": 1, "total_message_sent": 0,
            "thread_metadata": {
                "archived": False, "auto_archive_duration": 1440, "archive_timestamp": iso(time.time()),
                "locked": False, "create_timestamp": iso(time.time()),
            },
        })
    if channel.type == 1:
        data = {"id": channel.id, "type": 1, "flags": 0, "last_message_id": None,
                "recipients": [user_payload(channel.recipient_id or "0", "someone")]}
    return data


def attachment_payload(att: Attachment) -> dict[str, Any]:
    return {
        "id": att.id, "filename": att.filename, "size": len(att.data), "url": att.url, "proxy_url": att.url,
        "content_type": att.content_type,
    }


def message_payload(msg: Message) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": msg.id, "channel_id": msg.channel_id, "type": 0 if msg.webhook_id is None else 20,
        "content": msg.content, "author": msg.author, "mentions": [], "mention_roles": [],
        "attachments": [attachment_payload(a) for a in msg.attachments], "embeds": msg.embeds,
        "timestamp": iso(msg.created), "edited_timestamp": iso(msg.edited) if msg.edited else None,
        "flags": msg.flags, "components": msg.components, "pinned": False, "mention_everyone": False,
        "tts": False,
    }
    if msg.webhook_id is not None:
        data["webhook_id"] = msg.webhook_id
        data["application_id"] = msg.webhook_id
    if msg.reactions:
        data["reactions"] = [
            {"emoji": {"id": None, "name": name}, "count": len(users), "me": False, "me_burst": False,
             "burst_colors": [], "count_details": {"burst": 0, "normal": len(users)}}
            for name, users in msg.reactions.items()
        ]
    if msg.thread_id is not None:
        data["position"] = 0
    return data


@dataclass
class State:
    """Everything the fake holds; ids are strings as on the wire."""

    app_id: str
    bot: dict[str, Any]
    ids: Snowflakes = field(default_factory=Snowflakes)
    guilds: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    members: dict[tuple[str, str], Member] = field(default_factory=dict)
    messages: dict[str, Message] = field(default_factory=dict)
    attachments: dict[str, Attachment] = field(default_factory=dict)
    interactions: dict[str, Interaction] = field(default_factory=dict)
    commands: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def channel_messages(self, channel_id: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel_id == channel_id and not m.deleted]
