"""A bot with the Discord surface, the real discord.py client, and the fake Discord it talks to."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # discord.py's voice player imports audioop, deprecated since Python 3.11; we use no voice.
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from adapters.discord.bot import RunningDiscord, launch
from bot.app import App, build_app
from bot.config import config_from_dict
from bot.jobs import Job, JobStatus
from bot.surface import DISCORD_THROTTLE, ThrottlePolicy
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.state import Message

#: Rate-limit windows and the bot's edit throttle shrink by the same factor, keeping their ratio.
TIME_SCALE = 0.2
SCALED_THROTTLE = ThrottlePolicy(
    per_message_seconds=DISCORD_THROTTLE.per_message_seconds * TIME_SCALE,
    window_edits=DISCORD_THROTTLE.window_edits,
    window_seconds=DISCORD_THROTTLE.window_seconds * TIME_SCALE,
)
SKETCH = {"type": "sketch", "delay": 0.3, "size": 64, "preview_frames": 2}
GENEROUS = {"per_user_per_minute": 600.0, "burst": 100, "max_queued_per_user": 50, "max_running_per_user": 8}


@dataclass
class World:
    """The fake Discord with one server, its people, and the bot connected to it."""

    fake: FakeDiscord
    app: App
    bot: RunningDiscord
    guild: str
    channel: str
    alice: str
    bob: str
    admin: str
    restart: Callable[[], Awaitable[None]] = field(repr=False, default=None)  # type: ignore[assignment]

    async def job_of(self, message_id: str) -> Job:
        for _ in range(500):
            for job in await self.app.storage.user_jobs("discord", self.alice, list(JobStatus)) + \
                    await self.app.storage.user_jobs("discord", self.bob, list(JobStatus)):
                if message_id in job.message_refs.values():
                    return job
            await asyncio.sleep(0.02)
        raise AssertionError(f"no job has message {message_id}")

    async def finished(self, job_id: str, timeout: float = 15.0) -> Job:
        """Wait until the job is final and delivered (results posted)."""
        async with asyncio.timeout(timeout):
            while True:
                job = await self.app.storage.get_job(job_id)
                if job is not None and job.status.finished and (
                    job.delivered_at is not None or job.status is not JobStatus.SUCCEEDED
                ):
                    return job
                await asyncio.sleep(0.02)

    def message(self, message_id: str) -> Message:
        return self.fake.state.messages[message_id]

    def ephemeral_replies(self) -> list[Message]:
        return [m for m in self.fake.state.messages.values() if m.flags & 64 and not m.deleted]


WorldFactory = Callable[..., Awaitable[World]]


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(time_scale=TIME_SCALE)
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def world(make_world: WorldFactory) -> World:
    return await make_world()


@pytest.fixture
async def make_world(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[WorldFactory]:
    """Build the server and start the bot; keyword sections merge into the bot's config."""
    apps: list[tuple[App, RunningDiscord]] = []

    async def start(raw: dict[str, Any]) -> tuple[App, RunningDiscord]:
        app = await build_app(config_from_dict(raw, environ={}))
        running = await launch(app, throttle=SCALED_THROTTLE, guild_ready_timeout=0.1)
        await app.start()
        async with asyncio.timeout(10):
            await running.client.wait_until_ready()
        apps.append((app, running))
        return app, running

    async def factory(**sections: Any) -> World:
        guild = fake.add_guild()
        channel = fake.add_channel(guild, "art")
        people = [fake.add_member(guild, "alice"), fake.add_member(guild, "bob"),
                  fake.add_member(guild, "root", admin=True)]
        raw = _config(fake, guild, tmp_path, sections)
        app, running = await start(raw)
        world = World(fake, app, running, guild, channel, *people)

        async def restart() -> None:
            await _stop(world.app, world.bot)
            world.app, world.bot = await start(raw)

        world.restart = restart
        return world

    yield factory
    for app, running in apps:
        await _stop(app, running)


async def _stop(app: App, running: RunningDiscord) -> None:
    # The app first: jobs stop while the client can still post their final states.
    await app.stop(grace_seconds=0)
    await running.close()


def _config(fake: FakeDiscord, guild: str, tmp_path: Path, sections: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "storage": {"dir": str(tmp_path / "data")},
        "web": {"link_secret": "s" * 32, "public_url": "https://gallery.example"},
        "providers": {"sketch": SKETCH},
        "limits": GENEROUS,
        "discord": {"token": "fake-bot-token", "api_base_url": fake.api_base_url,
                    "gateway_url": fake.gateway_url, "dev_guild_ids": [guild]},
    }
    for key, value in sections.items():
        raw[key] = {**raw[key], **value} if isinstance(raw.get(key), dict) and key != "providers" else value
    return raw
