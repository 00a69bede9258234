"""A bot app with the web surface, served by aiohttp's test server on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, DummyCookieJar
from aiohttp.test_utils import TestClient, TestServer

from adapters.web.server import attach, create_web_app
from adapters.web.surface import WebSurface
from bot.app import App, build_app
from bot.config import config_from_dict
from bot.jobs import Job, JobStatus
from bot.links import GalleryLinks
from bot.metrics import Metrics

QUICK_SKETCH = {"type": "sketch", "delay": 0.3, "size": 64, "preview_frames": 3}
GENEROUS_LIMITS = {"per_user_per_minute": 600.0, "burst": 100, "max_queued_per_user": 50}


@dataclass
class Web:
    """The app, its web surface and a client that sends the name cookie we ask for."""

    app: App
    client: TestClient[Any, Any]
    surface: WebSurface
    links: GalleryLinks
    metrics: Metrics

    async def get(self, path: str, *, user: str | None = None, **kw: Any) -> ClientResponse:
        return await self.client.get(path, headers=_cookie(user, kw.pop("headers", None)), **kw)

    async def post(self, path: str, body: Any = None, *, user: str | None = None, **kw: Any) -> ClientResponse:
        return await self.client.post(path, json=body, headers=_cookie(user, kw.pop("headers", None)), **kw)

    async def say(self, text: str, *, user: str = "alice", channel: str = "general") -> dict[str, Any]:
        response = await self.post(f"/api/channels/{channel}/say", {"text": text}, user=user)
        body: dict[str, Any] = await response.json()
        assert response.status == 200, body
        return body

    async def submit(self, text: str, *, user: str = "alice", channel: str = "general") -> str:
        """Queue a prompt; return the first job's id."""
        reply = await self.say(text, user=user, channel=channel)
        assert reply["kind"] == "jobs"
        job_id: str = reply["jobs"][0]["id"]
        return job_id

    async def act(self, job_id: str, action: str, *, user: str = "alice", channel: str = "general",
                  **body: Any) -> ClientResponse:
        return await self.post(f"/api/jobs/{job_id}/{action}", {"channel": channel, **body}, user=user)

    async def finished(self, job_id: str, *, delivered: bool = True, timeout: float = 10.0) -> Job:
        """Wait until the job is final (and, when ``delivered``, its images handed to the surface)."""
        async with asyncio.timeout(timeout):
            while True:
                job = await self.app.storage.get_job(job_id)
                if job is not None and job.status.finished and (
                    not delivered or job.delivered_at is not None or job.status is not JobStatus.SUCCEEDED
                ):
                    return job
                await asyncio.sleep(0.02)


def _cookie(user: str | None, headers: dict[str, str] | None) -> dict[str, str]:
    merged = dict(headers or {})
    if user is not None:
        merged["Cookie"] = f"imaginebot_name={user}"
    return merged


WebFactory = Callable[..., Awaitable[Web]]


@pytest.fixture
async def make_web(tmp_path: Path) -> AsyncIterator[WebFactory]:
    """Build (and later close) web apps; keyword sections merge into the config mapping."""
    opened: list[tuple[App, TestClient[Any, Any]]] = []

    async def factory(*, instances: Any = None, sketch: dict[str, Any] | None = None, **sections: Any) -> Web:
        """``sketch`` overrides the sketch provider's keys; ``instances`` replaces the built providers."""
        raw: dict[str, Any] = {
            "storage": {"dir": str(tmp_path / "data")},
            "providers": {"sketch": {**QUICK_SKETCH, **(sketch or {})}},
            "limits": dict(GENEROUS_LIMITS),
        }
        for key, value in sections.items():
            raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) and key != "providers" else value
        app = await build_app(config_from_dict(raw, environ={}), providers=instances)
        surface, links, metrics = attach(app)
        client: TestClient[Any, Any] = TestClient(
            TestServer(create_web_app(app, surface=surface, links=links, metrics=metrics)),
            cookie_jar=DummyCookieJar(),
        )
        await client.start_server()
        await app.start()
        opened.append((app, client))
        return Web(app=app, client=client, surface=surface, links=links, metrics=metrics)

    yield factory
    for app, client in reversed(opened):
        await client.close()
        await app.stop(grace_seconds=0)


@pytest.fixture
async def web(make_web: WebFactory) -> Web:
    return await make_web()
