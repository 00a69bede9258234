"""The fake gateway: HELLO, heartbeat ACK, IDENTIFY -> READY + GUILD_CREATE, dispatches, RESUME.

Frames go out as plain JSON text (discord.py only inflates binary frames, so it accepts them
whatever ``compress`` it asked for). Shapes follow discord-api-docs events/gateway-events.mdx.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fakes.discord.server import FakeDiscord

HEARTBEAT_MS = 41250
#: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT: asking for one unapproved closes with 4014.
PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)


@dataclass
class Session:
    id: str
    shard: tuple[int, int]
    ws: web.WebSocketResponse | None = None
    seq: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def wants(self, guild_id: str | None) -> bool:
        shard_id, count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % count == shard_id


class Gateway:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: dict[str, Session] = {}
        self.identifies: list[dict[str, Any]] = []
        self.resumes = 0
        self.heartbeats = 0
        self._ids = itertools.count(1)
        self.ready = asyncio.Event()

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_MS}, "s": None, "t": None}))
        session: Session | None = None
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            msg = json.loads(frame.data)
            op = msg.get("op")
            if op == 1:
                self.heartbeats += 1
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:
                session = await self._identify(ws, msg["d"])
            elif op == 6:
                session = await self._resume(ws, msg["d"])
        if session is not None and session.ws is ws:
            session.ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        self.identifies.append({k: v for k, v in data.items() if k != "token"})
        if data.get("intents", 0) & PRIVILEGED_INTENTS:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return None
        shard = tuple(data.get("shard") or (0, 1))
        session = Session(id=f"session-{next(self._ids)}", shard=(int(shard[0]), int(shard[1])), ws=ws)
        self.sessions[session.id] = session
        guilds = [g for g in self.fake.state.guilds if session.wants(g)]
        await self._send(session, "READY", {
            "v": 10, "user": self.fake.state.bot, "guilds": [{"id": g, "unavailable": True} for g in guilds],
            "session_id": session.id, "resume_gateway_url": self.fake.gateway_url, "shard": list(session.shard),
            "application": {"id": self.fake.state.app_id, "flags": 0}, "private_channels": [],
            "relationships": [], "presences": [], "geo_ordered_rtc_regions": [], "auth": {}, "_trace": [],
        })
        for guild_id in guilds:
            await self._send(session, "GUILD_CREATE", self.fake.guild_create(guild_id))
        self.ready.set()
        return session

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> Session | None:
        session = self.sessions.get(data.get("session_id", ""))
        if session is None:
            await ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return None
        self.resumes += 1
        session.ws = ws
        for frame in [f for f in session.log if f["s"] > int(data.get("seq") or 0)]:
            await ws.send_str(json.dumps(frame))
        await self._send(session, "RESUMED", {})
        return session

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: str | None = None) -> None:
        """Send an event to every session whose shard holds ``guild_id`` (or log it for a resume)."""
        for session in list(self.sessions.values()):
            if session.wants(guild_id):
                await self._send(session, event, data)

    async def drop(self, code: int = 4000) -> None:
        """Close every socket abruptly; sessions stay resumable."""
        for session in self.sessions.values():
            if session.ws is not None:
                ws, session.ws = session.ws, None
                await ws.close(code=code, message=b"dropped by the test")

    async def _send(self, session: Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "s": session.seq, "t": event, "d": data}
        session.log.append(frame)
        if session.ws is not None and not session.ws.closed:
            await session.ws.send_str(json.dumps(frame))
