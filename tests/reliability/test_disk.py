"""A full or read-only disk: new work is refused with a clear message, the log says what is wrong,
queued jobs wait instead of failing one after another, nothing is corrupted, and the jobs already
accepted finish, once each, when the disk recovers (or after a restart).

SQLite meets the real thing: ``max_page_count`` pinned at the database's size makes every write
that needs a new page fail with SQLITE_FULL ("database or disk is full"), and ``query_only``
makes every write fail with SQLITE_READONLY. Image files get the ``OSError`` a full (ENOSPC) or
read-only (EROFS) file system raises, from a blob store in front of the real one (the BlobStore
seam): mounting a small or read-only file system needs privileges CI does not have, and root
ignores directory permissions.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.web.server import attach, create_web_app
from bot import messages
from bot.app import App, build_app
from bot.config import config_from_dict
from bot.errors import StorageUnavailable
from bot.jobs import Job, JobStatus, Origin
from storage.blobs import FileBlobStore
from storage.sqlite import SqliteStorage
from tests.fakes.surface import RecordingSurface

ALICE = Origin(platform="web", server_id="local", channel_id="general", user_id="alice")


class DiskBlobs:
    """The real blob store, behind a switch that makes writes fail as a sick file system does."""

    def __init__(self, inner: FileBlobStore) -> None:
        self.inner = inner
        self.errno: int | None = None
        self.refused = 0

    async def put(self, data: bytes) -> str:
        if self.errno is not None:
            self.refused += 1
            raise OSError(self.errno, os.strerror(self.errno))
        return await self.inner.put(data)

    async def get(self, sha256: str) -> bytes:
        return await self.inner.get(sha256)

    async def exists(self, sha256: str) -> bool:
        return await self.inner.exists(sha256)


class Disk:
    """Makes the disk under one app full or read-only, and well again."""

    def __init__(self, app: App, blobs: DiskBlobs) -> None:
        assert isinstance(app.storage, SqliteStorage)
        self.app = app
        self.blobs = blobs
        self.conn = app.storage._write_conn  # the writer's own connection: settings are per connection
        assert self.conn is not None

    async def fill(self) -> None:
        (pages,) = next(iter(await self.conn.execute_fetchall("PRAGMA page_count")))
        await self.conn.execute(f"PRAGMA max_page_count = {pages}")
        self.blobs.errno = errno.ENOSPC

    async def make_read_only(self) -> None:
        await self.conn.execute("PRAGMA query_only = ON")
        self.blobs.errno = errno.EROFS

    async def heal(self) -> None:
        await self.conn.execute("PRAGMA query_only = OFF")
        await self.conn.execute("PRAGMA max_page_count = 1073741823")
        self.blobs.errno = None


Started = tuple[App, RecordingSurface, Disk]


@pytest.fixture
async def start(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Started]]]:
    apps: list[App] = []

    async def factory(**queue: Any) -> Started:
        config = config_from_dict({
            "storage": {"dir": str(tmp_path / "data")},
            "providers": {"sketch": {"type": "sketch", "delay": 0.05, "size": 64, "preview_frames": 1,
                                     "concurrency": 2}},
            "queue": {"retry_base_seconds": 0.02, "retry_max_seconds": 0.1, "max_attempts": 20, **queue},
            "limits": {"per_user_per_minute": 6000, "burst": 500, "max_queued_per_user": 500},
        }, environ={})
        blobs = DiskBlobs(FileBlobStore(tmp_path / "data" / "images"))
        app = await build_app(config, blobs=blobs)
        surface = RecordingSurface()
        app.add_surface(surface)
        await app.start()
        apps.append(app)
        return app, surface, Disk(app, blobs)

    yield factory
    for app in apps:
        await app.stop(grace_seconds=0)


async def _submit_until_refused(app: App, limit: int = 200) -> tuple[list[Job], StorageUnavailable]:
    accepted: list[Job] = []
    for i in range(limit):
        try:
            accepted += await app.service.submit(f"while the disk fills {i} --n 1", ALICE)
        except StorageUnavailable as exc:
            return accepted, exc
    raise AssertionError(f"{limit} submissions on a full disk were all accepted")


async def _all_delivered(app: App, surface: RecordingSurface, jobs: list[Job], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while any(len(surface.deliveries.get(job.id, [])) < 1 for job in jobs) or await app.storage.undelivered_jobs():
            await asyncio.sleep(0.02)


async def _assert_consistent(app: App, data: Path) -> None:
    """SQLite's own check, and every stored image is present and whole."""
    with sqlite3.connect(data / "imaginebot.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    for status in JobStatus:
        for job in await app.storage.user_jobs("web", "alice", [status], limit=10_000):
            if status is JobStatus.SUCCEEDED:
                for image in await app.storage.job_images(job.id):
                    blob = await app.blobs.get(image.sha256)
                    assert hashlib.sha256(blob).hexdigest() == image.sha256


@pytest.mark.parametrize("trouble", ["full", "read-only"])
async def test_new_work_is_refused_clearly_and_accepted_jobs_finish_once_after_recovery(
    start: Callable[..., Awaitable[Started]], tmp_path: Path, caplog: pytest.LogCaptureFixture, trouble: str
) -> None:
    caplog.set_level(logging.INFO)
    app, surface, disk = await start()
    before = [job for i in range(4) for job in await app.service.submit(f"before {i} --n 1", ALICE)]
    await asyncio.sleep(0.02)  # some of them are running now

    await (disk.fill() if trouble == "full" else disk.make_read_only())
    during, refusal = await _submit_until_refused(app)
    assert refusal.message == messages.STORAGE_UNAVAILABLE
    assert "full or read-only" in refusal.message and "try again later" in refusal.message
    if trouble == "read-only":
        assert during == [], "a read-only database takes no new job at all"
    await asyncio.sleep(0.5)  # jobs in flight meet the sick disk, and wait
    said = caplog.text
    assert ("the disk is full" in said) if trouble == "full" else ("read-only" in said)
    assert "unexpected error" not in said and "Traceback" not in said
    assert disk.blobs.refused > 0, "the running jobs did meet the disk trouble"
    shown = [frame for frames in surface.frames.values() for frame in frames if frame.final]
    assert all(frame.status is JobStatus.SUCCEEDED for frame in shown), "no job failed for the disk's sake"

    await disk.heal()
    accepted = before + during
    await _all_delivered(app, surface, accepted)
    for job in accepted:
        stored = await app.storage.get_job(job.id)
        assert stored is not None and stored.status is JobStatus.SUCCEEDED and stored.delivered_at is not None
        assert len(surface.deliveries[job.id]) == 1, "delivered exactly once"
    [after] = await app.service.submit("after the disk recovered --n 1", ALICE)
    assert (await surface.wait_final(after.id)).status is JobStatus.SUCCEEDED
    await _assert_consistent(app, tmp_path / "data")

    await app.stop(grace_seconds=0)
    again, surface2, _ = await start()
    assert await again.storage.unfinished_jobs() == [] and await again.storage.undelivered_jobs() == []
    await asyncio.sleep(0.1)
    assert surface2.deliveries == {}, "nothing is delivered a second time after the restart"
    await _assert_consistent(again, tmp_path / "data")


async def test_jobs_stuck_on_a_sick_disk_at_shutdown_resume_after_restart(
    start: Callable[..., Awaitable[Started]], tmp_path: Path
) -> None:
    app, surface, disk = await start()
    jobs = [job for i in range(3) for job in await app.service.submit(f"stuck {i} --n 1", ALICE)]
    await disk.make_read_only()
    await asyncio.sleep(0.4)
    assert not any(job.id in surface.deliveries for job in jobs)
    await app.stop(grace_seconds=0)  # still read-only: whatever storage says must be enough

    again, surface2, _ = await start()
    await _all_delivered(again, surface2, jobs)
    assert all(len(surface2.deliveries[job.id]) == 1 for job in jobs)
    await _assert_consistent(again, tmp_path / "data")


async def test_the_web_playground_answers_503_with_the_message(tmp_path: Path) -> None:
    config = config_from_dict({
        "storage": {"dir": str(tmp_path / "data")},
        "providers": {"sketch": {"type": "sketch", "delay": 0.01, "size": 64}},
    }, environ={})
    blobs = DiskBlobs(FileBlobStore(tmp_path / "data" / "images"))
    app = await build_app(config, blobs=blobs)
    surface, links, metrics = attach(app)
    client: TestClient[Any, Any] = TestClient(TestServer(create_web_app(app, surface=surface, links=links,
                                                                         metrics=metrics)))
    await client.start_server()
    await app.start()
    try:
        await Disk(app, blobs).make_read_only()
        response = await client.post("/api/channels/general/say", json={"text": "a fox --n 1"},
                                     headers={"Cookie": "imaginebot_name=alice"})
        assert response.status == 503
        assert (await response.json())["error"] == messages.STORAGE_UNAVAILABLE
        health = await client.get("/healthz")
        assert health.status == 200, "reads still work: the bot is up, only writes are refused"
    finally:
        await client.close()
        await app.stop(grace_seconds=0)


async def test_queued_jobs_wait_while_the_disk_is_sick_instead_of_burning_through(
    start: Callable[..., Awaitable[Started]],
) -> None:
    # Every job started on a sick disk would make its images only to lose them (and a cloud
    # provider would bill for them): the queue holds back, and only a probe now and then runs.
    app, surface, disk = await start(retry_base_seconds=0.2, retry_max_seconds=1.0, max_attempts=5)
    started: list[str] = []
    app.engine.on_started.append(lambda job: started.append(job.id))
    jobs = [job for i in range(12) for job in await app.service.submit(f"queued {i} --n 1", ALICE)]
    await disk.make_read_only()
    done_before = {job_id for job_id in started if job_id in surface.deliveries}
    sick_since = len(started)
    await asyncio.sleep(1.5)
    touched = set(started[sick_since:]) | (set(started[:sick_since]) - done_before)
    waiting = len(jobs) - len(done_before)
    assert len(touched) <= 4 < waiting, f"{len(touched)} of {waiting} waiting jobs were started on a sick disk"
    assert not any(frame.final and frame.status is not JobStatus.SUCCEEDED
                   for frames in surface.frames.values() for frame in frames), "none failed"
    await disk.heal()
    await _all_delivered(app, surface, jobs)
    assert all(len(surface.deliveries[job.id]) == 1 for job in jobs)
