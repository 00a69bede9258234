"""``start_web``: what ``imaginebot run`` calls to serve the playground."""

from __future__ import annotations

import socket
from pathlib import Path

import aiohttp
import pytest

from adapters.web.server import start_web
from bot.app import build_app
from bot.config import config_from_dict
from bot.errors import ConfigError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_start_web_serves_on_the_configured_address_until_closed(tmp_path: Path) -> None:
    port = free_port()
    config = config_from_dict({"storage": {"dir": str(tmp_path)}, "web": {"port": port}}, environ={})
    app = await build_app(config)
    try:
        close = await start_web(app)
        assert "web" in app.surfaces
        await app.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws/general")
            await close()
            message = await ws.receive(timeout=5)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), "sockets close on stop"
            await ws.close()
            with pytest.raises(aiohttp.ClientConnectionError):
                await session.get(f"http://127.0.0.1:{port}/healthz")
    finally:
        await app.stop(grace_seconds=0)


async def test_a_busy_port_is_a_clear_config_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = config_from_dict({"storage": {"dir": str(tmp_path)}, "web": {"port": port}}, environ={})
        app = await build_app(config)
        try:
            with pytest.raises(ConfigError, match=rf"127\.0\.0\.1:{port}.*\[web\] port"):
                await start_web(app)
        finally:
            await app.stop(grace_seconds=0)
