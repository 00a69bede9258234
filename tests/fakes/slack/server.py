"""FakeSlack: the Web API, file uploads, response URLs and a Socket Mode socket on 127.0.0.1 (port 0).

Tests build a workspace (people, channels), then act as users through :class:`~.driver.SlackDriver`.
Everything the bot sent is recorded (``calls``, messages, ephemeral answers, uploads, views),
checked against the spec (``spec``) and rate limited like Slack (``limiter``); ``faults`` scripts
an answer for a method's next call. ``clock.jump`` moves the fake's wall clock, so a
``response_url`` expires 30 minutes "later" without waiting.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.fakes.slack import webapi
from tests.fakes.slack.blockkit import check_message
from tests.fakes.slack.ratelimit import RateLimiter
from tests.fakes.slack.socketmode import SocketMode
from tests.fakes.slack.spec import SpecChecker
from tests.fakes.slack.state import (
    Channel,
    Ephemeral,
    File,
    Ids,
    Message,
    ResponseUrl,
    Trigger,
    Upload,
    User,
    View,
)
from tests.fakes.slack.webapi import Call, Fault

MIB = 1024 * 1024
RESPONSE_URL_USES = 5
RESPONSE_URL_SECONDS = 30 * 60


class FakeClock:
    """The fake's wall clock: real time plus an offset a test can jump."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def jump(self, seconds: float) -> None:
        self._offset += seconds


class FakeSlack:
    """One workspace with one bot; ``time_scale`` shrinks every rate-limit window (fast tests)."""

    def __init__(self, *, time_scale: float = 1.0, upload_limit: int = 64 * MIB) -> None:
        self.ids = Ids()
        self.clock = FakeClock()
        self.team_id = "TFAKE0001"
        self.app_id = "AFAKE0001"
        self.bot_id = "BFAKE0001"
        self.bot_token = "xoxb-" + secrets.token_hex(12)
        self.app_token = "xapp-" + secrets.token_hex(12)
        self.signing_secret = secrets.token_hex(16)
        self.bot = User(self.ids.next("U"), "imaginebot", is_bot=True)
        self.users: dict[str, User] = {self.bot.id: self.bot}
        self.channels: dict[str, Channel] = {}
        self.messages: dict[tuple[str, str], Message] = {}
        self.ephemerals: list[Ephemeral] = []
        self.files: dict[str, File] = {}
        self.uploads: list[Upload] = []
        self.views: dict[str, View] = {}
        self.homes: dict[str, list[dict[str, Any]]] = {}
        self.triggers: dict[str, Trigger] = {}
        self.response_urls: dict[str, ResponseUrl] = {}
        self.calls: list[Call] = []
        self.faults: dict[str, list[Fault]] = {}
        self.spec = SpecChecker()
        self.limiter = RateLimiter(scale=time_scale)
        self.socket = SocketMode()
        self.upload_limit = upload_limit
        self.oversized_uploads = 0
        self.refused_responses = 0
        #: Every body the fake received outside the Web API (uploads excluded), for secret checks.
        self.received: list[str] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(client_max_size=64 * MIB)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/response/{token}", self._respond)
        app.router.add_get("/link", self.socket.handle)
        app.router.add_get("/link/", self.socket.handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        await self.socket.drop()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base_url(self) -> str:
        return self.base_url + "/api/"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link/"

    # --- the workspace ---------------------------------------------------------------------------
    def add_user(self, name: str, *, admin: bool = False, owner: bool = False) -> str:
        user = User(self.ids.next("U"), name, is_admin=admin, is_owner=owner)
        self.users[user.id] = user
        return user.id

    def add_channel(self, name: str, members: list[str], *, bot: bool = True) -> str:
        channel = Channel(self.ids.next("C"), name, set(members) | ({self.bot.id} if bot else set()))
        self.channels[channel.id] = channel
        return channel.id

    def dm_with(self, user_id: str) -> Channel:
        for channel in self.channels.values():
            if channel.is_im and channel.members == {user_id, self.bot.id}:
                return channel
        channel = Channel(self.ids.next("D"), user_id, {user_id, self.bot.id}, is_im=True)
        self.channels[channel.id] = channel
        return channel

    def post(self, channel: str, text: str, layout: list[dict[str, Any]], *, thread_ts: str | None = None,
             user: str | None = None, via: str = "chat.postMessage") -> Message:
        """Add a message (the bot's, unless ``user`` says whose)."""
        author = user or self.bot.id
        msg = Message(channel, self.ids.ts(), author, text, layout, thread_ts=thread_ts,
                      bot_id=self.bot_id if author == self.bot.id else None, via=via)
        self.messages[(channel, msg.ts)] = msg
        return msg

    def new_response_url(self, channel: str, user: str, source: Message | Ephemeral | None = None) -> str:
        token = secrets.token_urlsafe(16)
        self.response_urls[token] = ResponseUrl(token, channel, user, self.clock.now(), source)
        return f"{self.base_url}/response/{token}"

    def new_trigger(self, user: str) -> str:
        trigger = Trigger(f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(8)}", user,
                          time.monotonic())
        self.triggers[trigger.id] = trigger
        return trigger.id

    # --- looking at what happened ----------------------------------------------------------------
    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def is_parent(self, channel: str, ts: str) -> bool:
        msg = self.messages.get((channel, ts))
        return msg is not None and msg.thread_ts is None

    def top_level(self, channel: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts is None
                and not m.deleted]

    def replies(self, channel: str, ts: str) -> list[Message]:
        return [m for m in self.messages.values() if m.channel == channel and m.thread_ts == ts
                and not m.deleted]

    def ephemerals_for(self, user: str) -> list[Ephemeral]:
        return [e for e in self.ephemerals if e.user == user and not e.replaced]

    async def wait_until(self, predicate: Callable[[], object], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)

    # --- HTTP endpoints --------------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.StreamResponse:
        return await webapi.handle(self, request)

    async def _upload(self, request: web.Request) -> web.Response:
        file = self.files.get(request.match_info["file_id"])
        data = await request.read()
        if file is None or file.data is not None:
            return web.Response(status=404, text="unknown upload")
        if len(data) != file.length:
            self.spec.blocks("upload", [f"{file.id}: {len(data)} bytes sent, {file.length} announced"])
            return web.Response(status=400, text="length mismatch")
        file.data = data
        return web.Response(text=f"OK - {len(data)}")

    async def _respond(self, request: web.Request) -> web.Response:
        raw = await request.text()
        self.received.append(raw)
        url = self.response_urls.get(request.match_info["token"])
        if url is None:
            return web.Response(status=404, text="no_such_url")
        if url.uses >= RESPONSE_URL_USES or self.clock.now() - url.created > RESPONSE_URL_SECONDS:
            self.refused_responses += 1
            return web.Response(status=404, text="used_url" if url.uses >= RESPONSE_URL_USES else "expired_url")
        url.uses += 1
        body = await request.json()
        layout = body.get("blocks")
        self.spec.blocks("response_url", check_message(body.get("text"), layout))
        if body.get("delete_original") and url.source is not None:
            _retire(url.source)
        elif body.get("response_type") == "in_channel":
            self.post(url.channel, str(body.get("text") or ""), layout or [], via="response_url")
        elif body.get("replace_original") and isinstance(url.source, Message):
            url.source.text, url.source.blocks = str(body.get("text") or ""), layout or []
        else:
            if body.get("replace_original") and url.source is not None:
                _retire(url.source)
            self.ephemerals.append(Ephemeral(url.channel, url.user, str(body.get("text") or ""), layout or [],
                                             via="response_url", ts=self.ids.ts()))
        return web.Response(text="ok")

    def fail_next(self, method: str, fault: Fault | None = None) -> None:
        """Answer the next call of ``method`` with ``fault`` (default: 429, Retry-After 1)."""
        self.faults.setdefault(method, []).append(fault or Fault())


def _retire(message: Message | Ephemeral) -> None:
    if isinstance(message, Ephemeral):
        message.replaced = True
    else:
        message.deleted = True
