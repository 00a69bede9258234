"""What the provider fakes share: an aiohttp server on 127.0.0.1 (port 0), scripted faults, real PNGs.

Each fake records what it received and answers from a queue of one-shot :class:`Fault` s (or a
standing ``always`` fault) before its normal answer, so a test lines up exactly the failure it
is about: 429 with Retry-After, 5xx, a hang past the client's timeout, a dropped connection, a
malformed body.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image


@dataclass
class Fault:
    """One scripted failure: a status with a JSON body and headers, a hang, a drop or a raw body."""

    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (longer than the client's timeout: a timeout).
    delay: float = 0.0
    #: Close the connection without an answer.
    drop: bool = False
    #: Send these bytes as the body instead of JSON (a malformed answer).
    raw: bytes | None = None

    async def respond(self, request: web.Request) -> web.StreamResponse:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.drop:
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)
        if self.raw is not None:
            return web.Response(status=self.status, body=self.raw, headers=self.headers,
                                content_type="application/json")
        return web.json_response(self.body, status=self.status, headers=self.headers)


@dataclass
class Received:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.headers = {k.lower(): v for k, v in self.headers.items()}  # header names ignore case


class FakeServer:
    """Base of the provider fakes: lifecycle, fault queue and recording."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        #: One-shot faults, in order; a ``None`` entry lets that request through normally.
        self.faults: list[Fault | None] = []
        self.always: Fault | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self) -> str:
        """Serve on 127.0.0.1 at a free port; returns the base URL (no trailing slash)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        # In-flight handlers (a scripted hang) get little time at close: tests must not wait them out.
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.2, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self.port = server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def next_fault(self) -> Fault | None:
        if self.faults:
            return self.faults.pop(0)
        return self.always


def png(width: int, height: int, seed: str, *, alpha: bool = False) -> bytes:
    """A real PNG of that size in a colour hashed from ``seed``."""
    r, g, b = hashlib.sha256(seed.encode()).digest()[:3]
    mode, colour = ("RGBA", (r, g, b, 128)) if alpha else ("RGB", (r, g, b))
    out = io.BytesIO()
    Image.new(mode, (width, height), colour).save(out, "PNG", compress_level=1)
    return out.getvalue()


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n".encode()
