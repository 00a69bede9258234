"""A bot with the Slack surface, the real slack-bolt and slack_sdk, and the fake Slack they talk to.

``world`` runs each test in both transports (Socket Mode, and signed HTTP at ``/slack/events`` on
the web server); ``make_world(transport=...)`` builds one for tests about a single transport.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from adapters.slack.app import RunningSlack, launch
from adapters.web.server import start_web
from bot.app import App, build_app
from bot.config import config_from_dict
from bot.jobs import Job, JobStatus
from bot.surface import SLACK_THROTTLE, ThrottlePolicy
from tests.fakes.slack import FakeSlack, SlackDriver
from tests.fakes.slack.state import Ephemeral, Message

#: Slack's rate-limit windows, the bot's edit throttle and its post pacing all shrink by this
#: factor, keeping their ratios (a "minute" is 3 s).
TIME_SCALE = 0.05
SCALED_THROTTLE = ThrottlePolicy(
    per_message_seconds=SLACK_THROTTLE.per_message_seconds * TIME_SCALE,
    window_edits=SLACK_THROTTLE.window_edits,
    window_seconds=SLACK_THROTTLE.window_seconds * TIME_SCALE,
    per_server=True,
)
POST_INTERVAL = 1.0 * TIME_SCALE
SKETCH = {"type": "sketch", "delay": 0.2, "size": 64, "preview_frames": 2}
GENEROUS = {"per_user_per_minute": 600.0, "burst": 100, "max_queued_per_user": 50, "max_running_per_user": 8}
TRANSPORTS = ("socket", "http")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class World:
    """The fake workspace with its people, the bot connected to it, and a driver acting as Slack."""

    fake: FakeSlack
    driver: SlackDriver
    transport: str
    app: App
    slack: RunningSlack
    channel: str
    alice: str
    bob: str
    admin: str
    restart: Callable[[], Awaitable[None]] = field(repr=False, default=None)  # type: ignore[assignment]

    @property
    def people(self) -> tuple[str, str, str]:
        return self.alice, self.bob, self.admin

    async def job_ids(self) -> set[str]:
        return {j.id for j in await self.all_jobs()}

    async def all_jobs(self) -> list[Job]:
        storage = self.app.storage
        return [j for u in self.people for j in await storage.user_jobs("slack", u, list(JobStatus))]

    async def new_jobs(self, before: set[str], count: int = 1, timeout: float = 10.0) -> list[Job]:
        """Wait for ``count`` jobs that were not in ``before``; oldest first."""
        async with asyncio.timeout(timeout):
            while True:
                fresh = [j for j in await self.all_jobs() if j.id not in before]
                if len(fresh) >= count:
                    return sorted(fresh, key=lambda j: (j.created_at, j.id))
                await asyncio.sleep(0.02)

    async def finished(self, job_id: str, timeout: float = 15.0) -> Job:
        """Wait until the job is final and delivered (results uploaded)."""
        async with asyncio.timeout(timeout):
            while True:
                job = await self.app.storage.get_job(job_id)
                if job is not None and job.status.finished and (
                    job.delivered_at is not None or job.status is not JobStatus.SUCCEEDED
                ):
                    return job
                await asyncio.sleep(0.02)

    async def imagine(self, text: str, *, user: str | None = None, channel: str | None = None) -> Job:
        """``/imagine text`` and wait until its job is finished and delivered."""
        before = await self.job_ids()
        await self.driver.slash("/imagine", text, user=user or self.alice, channel=channel or self.channel)
        (job,) = await self.new_jobs(before)
        return await self.finished(job.id)

    def card(self, job: Job) -> Message:
        ts = job.message_refs.get("card") or job.message_refs["reply"]
        return self.fake.messages[(job.message_refs.get("channel") or job.origin.channel_id, ts)]

    def thread(self, job: Job) -> list[Message]:
        card = self.card(job)
        return self.fake.replies(card.channel, card.ts)

    async def ephemeral(self, user: str, containing: str = "", timeout: float = 10.0) -> Ephemeral:
        """The newest private answer to ``user`` that contains ``containing``."""
        def found() -> Ephemeral | None:
            hits = [e for e in self.fake.ephemerals_for(user) if containing.lower() in e.text.lower()]
            return hits[-1] if hits else None

        await self.fake.wait_until(lambda: found() is not None, timeout)
        answer = found()
        assert answer is not None
        return answer


WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    server = FakeSlack(time_scale=TIME_SCALE)
    await server.start()
    yield server
    await server.close()


@pytest.fixture(params=TRANSPORTS)
async def world(request: pytest.FixtureRequest, make_world: WorldFactory) -> World:
    return await make_world(transport=request.param)


@pytest.fixture
async def make_world(fake: FakeSlack, tmp_path: Path) -> AsyncIterator[WorldFactory]:
    """Build the workspace and start the bot; keyword sections merge into the bot's config."""
    running: list[tuple[App, RunningSlack, Callable[[], Awaitable[None]] | None]] = []
    drivers: list[SlackDriver] = []

    async def start(raw: dict[str, Any], transport: str, driver: SlackDriver) -> tuple[App, RunningSlack]:
        serve_web = transport == "http" or raw["web"]["enabled"]
        if serve_web:
            raw = {**raw, "web": {**raw["web"], "enabled": True, "port": free_port()}}
        app = await build_app(config_from_dict(raw, environ={}))
        close_web = await start_web(app) if serve_web else None
        slack = await launch(app, throttle=SCALED_THROTTLE, post_interval=POST_INTERVAL)
        await app.start()
        running.append((app, slack, close_web))
        if serve_web:
            driver.events_url = f"http://127.0.0.1:{raw['web']['port']}/slack/events"
        return app, slack

    async def factory(transport: str = "socket", **sections: Any) -> World:
        alice, bob, admin = fake.add_user("alice"), fake.add_user("bob"), fake.add_user("root", admin=True)
        channel = fake.add_channel("art", [alice, bob, admin])
        raw = _config(fake, tmp_path, transport, sections)
        driver = SlackDriver(fake, transport)
        drivers.append(driver)
        app, slack = await start(raw, transport, driver)
        world = World(fake, driver, transport, app, slack, channel, alice, bob, admin)

        async def restart() -> None:
            await _stop(*running.pop())
            world.app, world.slack = await start(raw, transport, driver)

        world.restart = restart
        return world

    yield factory
    for entry in reversed(running):
        await _stop(*entry)
    for driver in drivers:
        await driver.aclose()


async def _stop(app: App, slack: RunningSlack, close_web: Callable[[], Awaitable[None]] | None) -> None:
    # As `imaginebot run` does: jobs stop while the surfaces can still post their final states.
    await app.drain(grace_seconds=0)
    await slack.close()
    if close_web is not None:
        await close_web()
    await app.stop(grace_seconds=0)


def _config(fake: FakeSlack, tmp_path: Path, transport: str, sections: dict[str, Any]) -> dict[str, Any]:
    slack: dict[str, Any] = {"bot_token": fake.bot_token, "api_base_url": fake.api_base_url}
    if transport == "socket":
        slack["app_token"] = fake.app_token
    else:
        slack["signing_secret"] = fake.signing_secret
    raw: dict[str, Any] = {
        "storage": {"dir": str(tmp_path / "data")},
        "web": {"enabled": False, "link_secret": "s" * 32, "public_url": "https://gallery.example"},
        "providers": {"sketch": SKETCH},
        "limits": GENEROUS,
        "slack": slack,
    }
    for key, value in sections.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) and key != "providers" else value
    return raw
