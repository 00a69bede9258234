"""The fake Socket Mode endpoint at ``/link``: ``hello`` on connect, envelopes out, acks in.

Envelopes follow docs.slack.dev's Socket Mode shapes (``envelope_id``, ``type`` of
``slash_commands``, ``interactive`` or ``events_api``, ``payload``, ``accepts_response_payload``
and, for redelivered events, ``retry_attempt``/``retry_reason``). An ack is
``{"envelope_id", "payload"?}``; the fake records when it came.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Ack:
    envelope_id: str
    seconds: float
    payload: Any = None


@dataclass
class SocketMode:
    connections: list[web.WebSocketResponse] = field(default_factory=list)
    connects: int = 0
    acks: dict[str, Ack] = field(default_factory=dict)
    _sent: dict[str, float] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        if "ticket" not in request.query:
            raise web.HTTPUnauthorized()
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        self.connects += 1
        await ws.send_str(json.dumps({
            "type": "hello", "num_connections": len(self.connections),
            "debug_info": {"host": "fake", "approximate_connection_time": 18060},
            "connection_info": {"app_id": "AFAKE0001"},
        }))
        self.connected.set()
        try:
            async for frame in ws:
                if frame.type is WSMsgType.TEXT:
                    self._ack(json.loads(frame.data))
        finally:
            self.connections.remove(ws)
            if not self.connections:
                self.connected.clear()
        return ws

    def _ack(self, message: dict[str, Any]) -> None:
        envelope_id = str(message.get("envelope_id", ""))
        sent = self._sent.pop(envelope_id, None)
        if sent is None:
            return
        self.acks[envelope_id] = Ack(envelope_id, time.monotonic() - sent, message.get("payload"))
        self._arrived.set()

    async def push(self, kind: str, payload: dict[str, Any], *, retry_attempt: int | None = None,
                   retry_reason: str | None = None, timeout: float = 5.0) -> Ack:
        """Send one envelope to the newest connection and wait for its ack."""
        await asyncio.wait_for(self.connected.wait(), timeout)
        envelope_id = f"env-{next(self._ids)}"
        envelope: dict[str, Any] = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                                    "accepts_response_payload": kind != "events_api"}
        if retry_attempt is not None:
            envelope.update({"retry_attempt": retry_attempt, "retry_reason": retry_reason or "timeout"})
        self._sent[envelope_id] = time.monotonic()
        await self.connections[-1].send_str(json.dumps(envelope))
        async with asyncio.timeout(timeout):
            while envelope_id not in self.acks:
                self._arrived.clear()
                await self._arrived.wait()
        return self.acks[envelope_id]

    async def drop(self) -> None:
        for ws in list(self.connections):
            await ws.close(code=1001, message=b"fake shutting down")
