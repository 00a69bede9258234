"""FakeDiscord: the REST API, the gateway and a CDN on 127.0.0.1 (port 0), plus what tests drive.

Tests create guilds, channels and members, then act as users would: run a slash command, press a
button, pick a context menu item, react. Everything the bot sent is recorded (``calls``), checked
against the OpenAPI spec (``spec``) and rate limited (``limiter``). ``clock.jump`` moves the fake's
wall clock, so an interaction token expires 15 minutes "later" without waiting; ``storm`` answers
the next requests with 429s or 5xx (see :mod:`.storms`); ``gateway.drop`` cuts the websocket.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.discord.clock import FakeDiscordClock
from tests.fakes.discord.gateway import Gateway
from tests.fakes.discord.ratelimit import RateLimiter
from tests.fakes.discord.rest import API_PREFIX, Call, Rest
from tests.fakes.discord.spec import SpecChecker
from tests.fakes.discord.state import (
    ADMINISTRATOR,
    EVERYONE_PERMISSIONS,
    Attachment,
    Channel,
    Interaction,
    Member,
    State,
    attachment_payload,
    channel_payload,
    iso,
    member_payload,
    message_payload,
    user_payload,
)
from tests.fakes.discord.storms import Storm

MIB = 1024 * 1024


class FakeDiscord:
    """A Discord for one bot; ``time_scale`` shrinks every rate-limit window (fast tests)."""

    def __init__(self, *, time_scale: float = 1.0, upload_limit: int = 10 * MIB) -> None:
        self.clock = FakeDiscordClock()
        self.state = State(app_id="", bot={})
        ids = self.state.ids
        self.state.app_id = ids.next()
        self.state.bot = user_payload(self.state.app_id, "imaginebot", bot=True)
        self.owner = user_payload(ids.next(), "owner")
        self.limiter = RateLimiter(scale=time_scale)
        self.spec = SpecChecker()
        self.gateway = Gateway(self)
        self.rest = Rest(self)
        self.calls: list[Call] = []
        self.upload_limit = upload_limit
        self.dm_closed: set[str] = set()
        #: Bot-token edits per message id (monotonic times), to check the edit pacing.
        self.bot_edits: dict[str, list[float]] = {}
        self.expired_token_calls = 0
        self.oversized_uploads = 0
        self.admin_roles: dict[str, str] = {}
        #: Bursts of 429s or 5xx answers a test raised (see :mod:`.storms`).
        self.storms: list[Storm] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=64 * MIB)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/attachments/{channel}/{id}/{filename}", self._cdn)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self.rest.handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        await self.gateway.drop(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # --- the world -----------------------------------------------------------------------------------
    def add_guild(self, name: str = "Test server") -> str:
        guild_id = self.state.ids.next()
        self.state.guilds[guild_id] = {"id": guild_id, "name": name}
        self.admin_roles[guild_id] = self.state.ids.next()
        return guild_id

    def add_channel(self, guild_id: str, name: str = "general", *, nsfw: bool = False,
                    threads_allowed: bool = True) -> str:
        channel = Channel(id=self.state.ids.next(), guild_id=guild_id, name=name, nsfw=nsfw,
                          threads_allowed=threads_allowed)
        self.state.channels[channel.id] = channel
        return channel.id

    def add_member(self, guild_id: str, name: str, *, admin: bool = False) -> str:
        user_id = self.state.ids.next()
        roles = [self.admin_roles[guild_id]] if admin else []
        perms = EVERYONE_PERMISSIONS | (ADMINISTRATOR if admin else 0)
        self.state.members[(guild_id, user_id)] = Member(user_payload(user_id, name), roles, perms)
        return user_id

    def guild_create(self, guild_id: str) -> dict[str, Any]:
        now = self.clock.now()
        roles = [
            {"id": guild_id, "name": "@everyone", "permissions": str(EVERYONE_PERMISSIONS)},
            {"id": self.admin_roles[guild_id], "name": "Admins", "permissions": str(ADMINISTRATOR)},
        ]
        for position, role in enumerate(roles):
            role.update({"position": position, "color": 0, "hoist": False, "managed": False,
                         "mentionable": False, "flags": 0, "icon": None, "unicode_emoji": None})
        channels = [channel_payload(c) for c in self.state.channels.values()
                    if c.guild_id == guild_id and c.type == 0]
        bot_member = member_payload(Member(self.state.bot), now=now)
        return {
            **self.state.guilds[guild_id], "icon": None, "owner_id": self.owner["id"], "roles": roles,
            "channels": channels, "threads": [], "members": [bot_member], "member_count": 2,
            "joined_at": iso(now), "large": False, "unavailable": False, "features": [], "emojis": [],
            "stickers": [], "voice_states": [], "presences": [], "stage_instances": [],
            "guild_scheduled_events": [], "soundboard_sounds": [], "premium_tier": 0, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "mfa_level": 0, "system_channel_flags": 0, "preferred_locale": "en-US", "nsfw_level": 0,
            "premium_progress_bar_enabled": False, "application_id": None, "afk_channel_id": None,
            "system_channel_id": None, "rules_channel_id": None, "public_updates_channel_id": None,
        }

    def store_attachment(self, channel_id: str, filename: str, data: bytes) -> Attachment:
        att_id = self.state.ids.next()
        att = Attachment(att_id, filename, data, _mime(filename),
                         f"{self.base_url}/attachments/{channel_id}/{att_id}/{filename}")
        self.state.attachments[att_id] = att
        return att

    def storm(self, status: int, count: int, *, routes: tuple[str, ...] | None = None, retry_after: float = 0.05,
              is_global: bool = False) -> Storm:
        """Answer the next ``count`` bot-token requests (or those to ``routes``) with ``status``."""
        storm = Storm(status, count, frozenset(routes) if routes is not None else None, retry_after, is_global)
        self.storms.append(storm)
        return storm

    # --- acting as users -------------------------------------------------------------------------------
    async def slash(self, name: str, options: dict[str, Any] | None = None, *, user: str, channel: str,
                    attachment: tuple[str, bytes] | None = None) -> Interaction:
        """Run ``/name`` with ``options`` (str, int, bool); ``attachment`` fills the ``image`` option."""
        wire: list[dict[str, Any]] = [
            {"name": k, "type": _option_type(v), "value": v} for k, v in (options or {}).items()
        ]
        data: dict[str, Any] = {"id": self._command_id(name), "name": name, "type": 1, "options": wire}
        if attachment is not None:
            att = self.store_attachment(channel, *attachment)
            wire.append({"name": "image", "type": 11, "value": att.id})
            data["resolved"] = {"attachments": {att.id: attachment_payload(att)}}
        return await self._interact(2, data, user=user, channel=channel)

    async def autocomplete(self, name: str, options: dict[str, Any], focused: str, *, user: str,
                           channel: str) -> list[dict[str, Any]]:
        wire = [{"name": k, "type": _option_type(v), "value": v, **({"focused": True} if k == focused else {})}
                for k, v in options.items()]
        inter = await self._interact(4, {"id": self._command_id(name), "name": name, "type": 1, "options": wire},
                                     user=user, channel=channel)
        await self.wait_until(lambda: inter.autocomplete is not None)
        return inter.autocomplete or []

    async def press(self, custom_id: str, message_id: str, *, user: str) -> Interaction:
        msg = self.state.messages[message_id]
        return await self._interact(3, {"custom_id": custom_id, "component_type": 2}, user=user,
                                    channel=msg.channel_id, message=message_payload(msg))

    async def context_menu(self, name: str, message_id: str, *, user: str) -> Interaction:
        msg = self.state.messages[message_id]
        data = {"id": self._command_id(name), "name": name, "type": 3, "target_id": message_id,
                "resolved": {"messages": {message_id: message_payload(msg)}}}
        return await self._interact(2, data, user=user, channel=msg.channel_id)

    async def react(self, message_id: str, emoji: str, *, user: str) -> None:
        msg = self.state.messages[message_id]
        guild_id = self._guild_of(msg.channel_id)
        member = self.state.members[(guild_id, user)]
        msg.reactions.setdefault(emoji, []).append(user)
        await self.gateway.dispatch("MESSAGE_REACTION_ADD", {
            "user_id": user, "channel_id": msg.channel_id, "message_id": message_id, "guild_id": guild_id,
            "member": member_payload(member, now=self.clock.now()), "emoji": {"id": None, "name": emoji},
            "message_author_id": msg.author["id"], "burst": False, "burst_colors": [], "type": 0,
        }, guild_id=guild_id)

    async def _interact(self, kind: int, data: dict[str, Any], *, user: str, channel: str,
                        message: dict[str, Any] | None = None) -> Interaction:
        guild_id = self._guild_of(channel)
        member = self.state.members[(guild_id, user)]
        inter = Interaction(id=self.state.ids.next(), token=secrets.token_urlsafe(48), type=kind,
                            channel_id=channel, guild_id=guild_id, user_id=user,
                            created_real=time.monotonic(), created_fake=self.clock.now())
        self.state.interactions[inter.id] = inter
        payload: dict[str, Any] = {
            "id": inter.id, "application_id": self.state.app_id, "type": kind, "token": inter.token,
            "version": 1, "guild_id": guild_id, "channel_id": channel,
            "channel": channel_payload(self.state.channels[channel]),
            "member": member_payload(member, now=self.clock.now()), "app_permissions": str(EVERYONE_PERMISSIONS),
            "locale": "en-US", "guild_locale": "en-US", "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id}, "context": 0,
            "attachment_size_limit": self.upload_limit, "data": data,
        }
        if message is not None:
            payload["message"] = message
            inter.message_id = message["id"]
        await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=guild_id)
        return inter

    # --- looking at what happened -----------------------------------------------------------------------
    def calls_to(self, method: str, template: str) -> list[Call]:
        return [c for c in self.calls if c.route == f"{method} {template}"]

    def messages_in(self, channel_id: str) -> list[Any]:
        return self.state.channel_messages(channel_id)

    def thread_of(self, message_id: str) -> Channel | None:
        channel = self.state.channels.get(message_id)
        return channel if channel is not None and channel.type == 11 else None

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)

    def _guild_of(self, channel_id: str) -> str:
        guild_id = self.state.channels[channel_id].guild_id
        assert guild_id is not None
        return guild_id

    def _command_id(self, name: str) -> str:
        for commands in self.state.commands.values():
            for command in commands:
                if command["name"] == name:
                    return str(command["id"])
        return "0"

    async def _cdn(self, request: web.Request) -> web.Response:
        att = self.state.attachments.get(request.match_info["id"])
        if att is None:
            return web.Response(status=404)
        return web.Response(body=att.data, content_type=att.content_type)


def _option_type(value: Any) -> int:
    if isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return 4
    if isinstance(value, float):
        return 10
    return 3


def _mime(filename: str) -> str:
    ext = filename.rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp",
            "gif": "image/gif"}.get(ext, "application/octet-stream")
