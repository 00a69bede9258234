"""SqliteStorage on real database files: what the queue, galleries and limits rely on."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import InvalidRequest, NotFound
from bot.jobs import ImageRecord, Job, JobStatus, Origin
from bot.request import AspectRatio, GenerationRequest
from storage.sqlite import SqliteStorage
from storage.sqlite_writer import StorageClosed

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z
_ids = itertools.count()


def make_job(
    *,
    prompt: str = "a cat on a mat",
    negative: str | None = None,
    channel: str = "c1",
    user: str = "u1",
    server: str = "g1",
    platform: str = "discord",
    created_at: float = T0,
    status: JobStatus = JobStatus.QUEUED,
) -> Job:
    origin = Origin(
        platform=platform, server_id=server, channel_id=channel, user_id=user, user_name=user.upper()
    )
    request = GenerationRequest(prompt=prompt, negative_prompt=negative, count=2)
    return Job(
        id=f"job{next(_ids):06d}", origin=origin, request=request, provider="sketch", status=status,
        created_at=created_at,
    )


def image(
    job: Job, index: int = 0, *, provider: str = "sketch", cost: float = 0.02, sha: str | None = None
) -> ImageRecord:
    return ImageRecord(
        job_id=job.id, index=index, sha256=sha or f"{index:x}" * 64, width=64, height=64, size_bytes=100,
        mime="image/png", seed=7, provider=provider, model="sketch-1", revised_prompt=None,
        cost_usd=cost, created_at=job.created_at + 5,
    )


async def succeed(store: SqliteStorage, job: Job, images: int = 2, **kwargs: object) -> None:
    await store.finish_job(
        job.id, status=JobStatus.SUCCEEDED, finished_at=job.created_at + 5,
        images=[image(job, i, **kwargs) for i in range(images)],  # type: ignore[arg-type]
    )


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(tmp_path / "bot.db")
    await storage.open()
    yield storage
    await storage.close()


# --- jobs ---------------------------------------------------------------------------------------


async def test_a_job_comes_back_exactly_after_a_restart(tmp_path: Path) -> None:
    origin = Origin(
        platform="slack", server_id="T1", channel_id="C1", user_id="U1", user_name="ann", thread_id="th",
        roles=frozenset({"artist", "mod"}), is_admin=True, nsfw_channel=True,
    )
    request = GenerationRequest(
        prompt="a fox", negative_prompt="blur", aspect_ratio=AspectRatio(width=16, height=9), count=3,
        seed=42,
    )
    job = Job(
        id="j1", origin=origin, request=request, provider="openai", created_at=T0, batch_id="b1",
        message_refs={"card": "m1"},
    )
    first = SqliteStorage(tmp_path / "bot.db", synchronous="full")
    await first.open()
    await first.insert_jobs([job])
    await first.close()

    second = SqliteStorage(tmp_path / "bot.db")
    await second.open()
    try:
        assert await second.get_job("j1") == job
        assert await second.get_job("nope") is None
    finally:
        await second.close()


async def test_a_returned_write_is_already_committed_for_other_connections(
    store: SqliteStorage, tmp_path: Path
) -> None:
    jobs = [make_job(created_at=T0 + i) for i in range(50)]
    await store.insert_jobs(jobs[:10])
    await asyncio.gather(*(store.insert_jobs([j]) for j in jobs[10:]))
    await asyncio.gather(*(store.mark_running(j.id, started_at=T0 + 1, attempts=1) for j in jobs))
    with sqlite3.connect(tmp_path / "bot.db") as other:
        rows = other.execute("SELECT count(*) FROM jobs WHERE status = 'running'").fetchone()
    assert rows == (50,)


async def test_insert_jobs_stores_all_or_none(store: SqliteStorage) -> None:
    existing, fresh = make_job(), make_job()
    await store.insert_jobs([existing])
    with pytest.raises(sqlite3.IntegrityError):
        await store.insert_jobs([fresh, existing])
    assert await store.get_job(fresh.id) is None


async def test_a_job_moves_through_its_states(store: SqliteStorage) -> None:
    job = make_job()
    await store.insert_jobs([job])
    await store.mark_running(job.id, started_at=T0 + 1, attempts=1)
    running = await store.get_job(job.id)
    assert running is not None and (running.status, running.started_at, running.attempts) == (
        JobStatus.RUNNING, T0 + 1, 1,
    )
    await store.requeue(job.id, attempts=1, error="provider timed out")
    queued = await store.get_job(job.id)
    assert queued is not None and (queued.status, queued.started_at, queued.error) == (
        JobStatus.QUEUED, None, "provider timed out",
    )
    await store.set_provider(job.id, "fallback")
    await store.mark_running(job.id, started_at=T0 + 2, attempts=2)
    await store.finish_job(job.id, status=JobStatus.FAILED, finished_at=T0 + 3, error="refused")
    await store.mark_delivered(job.id, delivered_at=T0 + 4)
    done = await store.get_job(job.id)
    assert done is not None
    assert (done.status, done.provider, done.attempts, done.finished_at, done.error, done.delivered_at) == (
        JobStatus.FAILED, "fallback", 2, T0 + 3, "refused", T0 + 4,
    )


async def test_message_refs_are_merged_not_replaced(store: SqliteStorage) -> None:
    job = make_job()
    job.message_refs = {"card": "m1"}
    await store.insert_jobs([job])
    await asyncio.gather(
        store.set_message_refs(job.id, {"thread": "t1"}), store.set_message_refs(job.id, {"x": "1"})
    )
    await store.set_message_refs(job.id, {"card": "m2"})
    stored = await store.get_job(job.id)
    assert stored is not None and stored.message_refs == {"card": "m2", "thread": "t1", "x": "1"}


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.mark_running("ghost", started_at=T0, attempts=1),
        lambda s: s.requeue("ghost", attempts=1, error=None),
        lambda s: s.set_provider("ghost", "x"),
        lambda s: s.finish_job("ghost", status=JobStatus.FAILED, finished_at=T0),
        lambda s: s.mark_delivered("ghost", delivered_at=T0),
        lambda s: s.set_message_refs("ghost", {"a": "b"}),
        lambda s: s.mark_deleted("ghost"),
        lambda s: s.set_cache_key("ghost", "k"),
    ],
)
async def test_changing_a_missing_job_is_not_found(store: SqliteStorage, call: object) -> None:
    with pytest.raises(NotFound):
        await call(store)  # type: ignore[operator]


async def test_a_missing_job_does_not_spoil_concurrent_writes(store: SqliteStorage) -> None:
    jobs = [make_job() for _ in range(20)]
    await store.insert_jobs(jobs)
    results = await asyncio.gather(
        store.mark_running("ghost", started_at=T0, attempts=1),
        *(store.mark_running(j.id, started_at=T0, attempts=1) for j in jobs),
        return_exceptions=True,
    )
    assert isinstance(results[0], NotFound) and results[1:] == [None] * 20
    assert len(await store.user_jobs("discord", "u1", [JobStatus.RUNNING])) == 20


# --- finishing, images and usage ---------------------------------------------------------------


async def test_finish_job_stores_images_and_usage(store: SqliteStorage) -> None:
    job = make_job(user="ann")
    await store.insert_jobs([job])
    await store.finish_job(
        job.id, status=JobStatus.SUCCEEDED, finished_at=T0 + 5,
        images=[image(job, 1, cost=0.5), image(job, 0, cost=0.25)],
    )
    assert [r.index for r in await store.job_images(job.id)] == [0, 1]
    assert (await store.job_images(job.id))[1] == image(job, 1, cost=0.5)
    day = await store.usage("discord", "g1", "2023-11-14")
    assert (day.images, day.cost_usd) == (2, 0.75)
    assert (await store.usage("discord", "g1", "2023-11-14", user_id="ann")).images == 2
    assert (await store.usage("discord", "g1", "2023-11-14", user_id="bob")).images == 0
    assert (await store.usage("discord", "g1", "2023-11-15")).images == 0


async def test_a_failed_or_cancelled_job_costs_nothing(store: SqliteStorage) -> None:
    failed, cancelled = make_job(), make_job()
    await store.insert_jobs([failed, cancelled])
    await store.finish_job(failed.id, status=JobStatus.FAILED, finished_at=T0, error="boom")
    await store.finish_job(cancelled.id, status=JobStatus.CANCELLED, finished_at=T0)
    assert (await store.usage("discord", "g1", "2023-11-14")).images == 0


async def test_finish_job_is_all_or_nothing(store: SqliteStorage) -> None:
    bad, *good = [make_job() for _ in range(6)]
    await store.insert_jobs([bad, *good])
    await store.mark_running(bad.id, started_at=T0, attempts=1)
    broken = [image(bad, 0), image(bad, 1, sha="not-a-hash")]
    results = await asyncio.gather(
        store.finish_job(bad.id, status=JobStatus.SUCCEEDED, finished_at=T0 + 5, images=broken),
        *(succeed(store, job, images=1) for job in good),
        return_exceptions=True,
    )
    assert isinstance(results[0], sqlite3.IntegrityError) and results[1:] == [None] * 5
    still = await store.get_job(bad.id)
    assert still is not None and (still.status, still.finished_at) == (JobStatus.RUNNING, None)
    assert await store.job_images(bad.id) == []
    assert (await store.usage("discord", "g1", "2023-11-14")).images == 5


async def test_finish_job_needs_a_final_status_and_its_own_images(store: SqliteStorage) -> None:
    job, other = make_job(), make_job()
    await store.insert_jobs([job, other])
    with pytest.raises(ValueError):
        await store.finish_job(job.id, status=JobStatus.RUNNING, finished_at=T0)
    with pytest.raises(ValueError):
        await store.finish_job(job.id, status=JobStatus.SUCCEEDED, finished_at=T0, images=[image(other)])


async def test_usage_by_day_lists_recent_days_newest_first(store: SqliteStorage) -> None:
    day = 86_400.0
    for offset, user in [(0, "a"), (0, "b"), (1, "a"), (3, "a")]:
        job = make_job(user=user, created_at=T0 + offset * day)
        await store.insert_jobs([job])
        await succeed(store, job, cost=0.1)
    other_server = make_job(server="g2")
    await store.insert_jobs([other_server])
    await succeed(store, other_server)
    summary = await store.usage_by_day("discord", "g1")
    assert [(s.day, s.images) for s in summary] == [("2023-11-17", 2), ("2023-11-15", 2), ("2023-11-14", 4)]
    assert summary[-1].cost_usd == pytest.approx(0.4)
    assert [s.day for s in await store.usage_by_day("discord", "g1", days=2)] == ["2023-11-17", "2023-11-15"]


# --- queue views --------------------------------------------------------------------------------


async def test_unfinished_and_undelivered_jobs_for_restart(store: SqliteStorage) -> None:
    a, b, c = make_job(created_at=T0 + 1), make_job(created_at=T0), make_job(created_at=T0)
    done, gone, delivered = make_job(), make_job(), make_job()
    await store.insert_jobs([a, b, c, done, gone, delivered])
    await store.mark_running(c.id, started_at=T0, attempts=1)
    for job in (done, gone, delivered):
        await store.finish_job(job.id, status=JobStatus.FAILED, finished_at=T0 + 2)
    await store.mark_deleted(gone.id)
    await store.mark_delivered(delivered.id, delivered_at=T0 + 3)
    assert [j.id for j in await store.unfinished_jobs()] == [b.id, c.id, a.id]
    assert [j.id for j in await store.undelivered_jobs()] == [done.id]


@pytest.mark.slow
async def test_ten_thousand_queued_jobs_load_in_well_under_a_second(store: SqliteStorage) -> None:
    await store.insert_jobs([make_job(user=f"u{i % 500}", created_at=T0 + i) for i in range(10_000)])
    started = time.perf_counter()
    jobs = await store.unfinished_jobs()
    assert len(jobs) == 10_000
    assert time.perf_counter() - started < 1.0


async def test_user_jobs_by_status_oldest_first(store: SqliteStorage) -> None:
    jobs = [make_job(created_at=T0 + i) for i in range(4)]
    theirs = make_job(user="someone-else")
    elsewhere = make_job(platform="slack")
    await store.insert_jobs([*reversed(jobs), theirs, elsewhere])
    await store.mark_running(jobs[1].id, started_at=T0, attempts=1)
    await store.finish_job(jobs[2].id, status=JobStatus.FAILED, finished_at=T0)
    waiting = [JobStatus.QUEUED, JobStatus.RUNNING]
    mine = await store.user_jobs("discord", "u1", waiting)
    assert [j.id for j in mine] == [jobs[0].id, jobs[1].id, jobs[3].id]
    first_two = await store.user_jobs("discord", "u1", waiting, limit=2)
    assert [j.id for j in first_two] == [jobs[0].id, jobs[1].id]
    assert await store.count_user_jobs("discord", "u1", waiting) == 3
    assert await store.count_user_jobs("discord", "u1", [JobStatus.FAILED]) == 1
    assert await store.count_user_jobs("discord", "u1", []) == 0


async def test_the_cache_only_offers_visible_successes(store: SqliteStorage) -> None:
    failed, hit, deleted = make_job(), make_job(), make_job()
    await store.insert_jobs([failed, hit, deleted])
    for job in (failed, hit, deleted):
        await store.set_cache_key(job.id, "k1")
    assert await store.find_cached("k1") is None
    await store.finish_job(failed.id, status=JobStatus.FAILED, finished_at=T0)
    await succeed(store, deleted)
    await store.mark_deleted(deleted.id)
    assert await store.find_cached("k1") is None
    await succeed(store, hit)
    assert await store.find_cached("k1") == hit.id
    assert await store.find_cached("k2") is None


# --- history, galleries, channels --------------------------------------------------------------


async def test_history_pages_cover_every_job_once_despite_equal_timestamps(store: SqliteStorage) -> None:
    jobs = [make_job(created_at=T0 + i // 4) for i in range(23)]  # groups of four share a timestamp
    hidden, elsewhere = make_job(created_at=T0 + 100), make_job(channel="c2")
    await store.insert_jobs([*jobs, hidden, elsewhere])
    await store.mark_deleted(hidden.id)
    seen, cursor, pages = [], None, 0
    while True:
        page = await store.channel_history("discord", "c1", cursor=cursor, limit=5)
        seen += [j.id for j in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
        await store.insert_jobs([make_job(created_at=T0 + 1000)])  # newer jobs must not shift later pages
    expected = [j.id for j in sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)]
    assert (seen, pages) == (expected, 5)


async def test_an_exactly_full_last_page_has_no_next_cursor(store: SqliteStorage) -> None:
    await store.insert_jobs([make_job(created_at=T0 + i) for i in range(4)])
    first = await store.channel_history("discord", "c1", limit=2)
    last = await store.channel_history("discord", "c1", cursor=first.next_cursor, limit=2)
    assert len(last.items) == 2 and last.next_cursor is None


@pytest.mark.parametrize("cursor", ["garbage!", "W10", "WyJ4IiwieSJd", ""])
async def test_a_damaged_cursor_is_an_invalid_request(store: SqliteStorage, cursor: str) -> None:
    with pytest.raises(InvalidRequest):
        await store.channel_history("discord", "c1", cursor=cursor)
    with pytest.raises(InvalidRequest):
        await store.channel_gallery("discord", "c1", cursor=cursor)


async def test_gallery_pages_by_image_newest_job_first(store: SqliteStorage) -> None:
    jobs = [make_job(created_at=T0 + i // 2) for i in range(5)]
    failed, deleted = make_job(created_at=T0 + 50), make_job(created_at=T0 + 60)
    await store.insert_jobs([*jobs, failed, deleted])
    for job in [*jobs, deleted]:
        await succeed(store, job, images=2)
    await store.finish_job(failed.id, status=JobStatus.FAILED, finished_at=T0, images=[image(failed)])
    await store.mark_deleted(deleted.id)
    seen, cursor = [], None
    while True:
        page = await store.channel_gallery("discord", "c1", cursor=cursor, limit=3)
        seen += [(item.job.id, item.image.index) for item in page.items]
        if (cursor := page.next_cursor) is None:
            break
    newest_first = sorted(jobs, key=lambda j: (j.created_at, j.id), reverse=True)
    assert seen == [(j.id, i) for j in newest_first for i in (0, 1)]


async def test_gallery_filters(store: SqliteStorage) -> None:
    fox = make_job(prompt="a red fox in snow", user="ann", created_at=T0)
    cat = make_job(prompt="a cat, sleeping", negative="dogs", user="bob", created_at=T0 + 10)
    cafe = make_job(prompt="Café at night", user="ann", created_at=T0 + 20)
    await store.insert_jobs([fox, cat, cafe])
    await succeed(store, fox, images=1)
    await succeed(store, cat, images=1, provider="openai")
    await succeed(store, cafe, images=1)

    async def ids(**filters: object) -> list[str]:
        page = await store.channel_gallery("discord", "c1", **filters)  # type: ignore[arg-type]
        return [item.job.id for item in page.items]

    assert await ids(user_id="ann") == [cafe.id, fox.id]
    assert await ids(provider="openai") == [cat.id]
    assert await ids(since=T0 + 10) == [cafe.id, cat.id]
    assert await ids(until=T0 + 10) == [fox.id]
    assert await ids(search="FOX snow") == [fox.id]
    assert await ids(search="fox cat") == []
    assert await ids(search="dogs") == [cat.id]
    assert await ids(search="cafe") == [cafe.id]
    assert await ids(search="   ") == [cafe.id, cat.id, fox.id]
    assert await ids(search="a", user_id="ann") == [fox.id]
    assert await ids(search="at", user_id="ann", since=T0 + 1) == [cafe.id]


@pytest.mark.parametrize(
    ("search", "found"),
    [
        ('"red fox', True), ("fox*", True), ("red -fox", True), ("(fox", True), ("fox AND", False),
        ("NEAR(fox red)", False), ("prompt:fox", False), ("fox OR cat", False), ("^fox", True),
        ("\x00fox", True), ("fox\ud800", True), ('""', False), ("*", False),
    ],
)
async def test_search_treats_operators_as_text(store: SqliteStorage, search: str, found: bool) -> None:
    fox = make_job(prompt="a red fox")
    await store.insert_jobs([fox])
    await succeed(store, fox, images=1)
    page = await store.channel_gallery("discord", "c1", search=search)
    assert bool(page.items) is found


@pytest.fixture
async def searchable(store: SqliteStorage) -> SqliteStorage:
    jobs = [make_job(prompt=p) for p in ('say "hi" (now)', "AND OR NOT", "col:umn * ^ - +", "naïve 東京")]
    await store.insert_jobs(jobs)
    for job in jobs:
        await succeed(store, job, images=1)
    return store


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text())
async def test_search_never_raises_on_any_text(searchable: SqliteStorage, text: str) -> None:
    page = await searchable.channel_gallery("discord", "c1", search=text, limit=10)
    assert len(page.items) <= 4


async def test_channels_most_recently_active_first(store: SqliteStorage) -> None:
    await store.insert_jobs([
        make_job(channel="old", created_at=T0), make_job(channel="new", created_at=T0 + 5),
        make_job(channel="mid", created_at=T0 + 3), make_job(channel="old", created_at=T0 + 1),
        make_job(channel="s1", platform="slack", created_at=T0 + 4),
    ])
    gone = make_job(channel="gone", created_at=T0 + 9)
    await store.insert_jobs([gone])
    await store.mark_deleted(gone.id)
    assert await store.channels() == [
        ("discord", "new"), ("slack", "s1"), ("discord", "mid"), ("discord", "old"),
    ]
    assert await store.channels("slack") == [("slack", "s1")]


# --- favourites ---------------------------------------------------------------------------------


async def test_favourites(store: SqliteStorage) -> None:
    a, b = make_job(created_at=T0), make_job(created_at=T0 + 1)
    await store.insert_jobs([a, b])
    await succeed(store, a)
    await succeed(store, b)
    for job, index in [(a, 1), (b, 0), (a, 0)]:
        await store.set_favourite("discord", "ann", job.id, index, True)
    await store.set_favourite("discord", "ann", b.id, 0, True)  # again: no duplicate, no reordering
    await store.set_favourite("discord", "bob", a.id, 1, True)

    first = await store.favourites("discord", "ann", limit=2)
    rest = await store.favourites("discord", "ann", cursor=first.next_cursor, limit=2)
    starred = [(i.job.id, i.image.index, i.favourite_count) for i in [*first.items, *rest.items]]
    assert starred == [(a.id, 0, 1), (b.id, 0, 1), (a.id, 1, 2)]
    assert rest.next_cursor is None

    gallery = await store.channel_gallery("discord", "c1")
    assert {(i.job.id, i.image.index): i.favourite_count for i in gallery.items}[(a.id, 1)] == 2

    await store.set_favourite("discord", "ann", a.id, 1, False)
    await store.mark_deleted(b.id)
    remaining = await store.favourites("discord", "ann")
    assert [(i.job.id, i.image.index) for i in remaining.items] == [(a.id, 0)]
    with pytest.raises(NotFound):
        await store.set_favourite("discord", "ann", a.id, 3, True)
    with pytest.raises(NotFound):
        await store.set_favourite("discord", "ann", b.id, 1, True)


# --- settings and templates ---------------------------------------------------------------------


async def test_settings_are_per_scope_and_replaced_whole(store: SqliteStorage) -> None:
    assert await store.get_settings("user", "discord", "ann") == {}
    await store.set_settings("user", "discord", "ann", {"count": 2, "aspect": "16:9"})
    await store.set_settings("user", "discord", "ann", {"count": 1})
    await store.set_settings("server", "discord", "ann", {"nsfw": False})
    assert await store.get_settings("user", "discord", "ann") == {"count": 1}
    assert await store.get_settings("server", "discord", "ann") == {"nsfw": False}
    assert await store.get_settings("user", "slack", "ann") == {}
    with pytest.raises(ValueError):
        await store.set_settings("planet", "discord", "x", {})


async def test_templates_save_replace_list_delete(store: SqliteStorage) -> None:
    await store.save_template("discord", "user", "ann", "poster", {"text": "v1"})
    await store.save_template("discord", "user", "ann", "poster", {"text": "v2"})
    await store.save_template("discord", "user", "ann", "art", {"text": "a"})
    await store.save_template("discord", "server", "ann", "art", {"text": "server"})
    assert await store.templates("discord", "user", "ann") == {"art": {"text": "a"}, "poster": {"text": "v2"}}
    assert await store.delete_template("discord", "user", "ann", "poster") is True
    assert await store.delete_template("discord", "user", "ann", "poster") is False
    assert await store.templates("discord", "user", "ann") == {"art": {"text": "a"}}
    assert await store.templates("discord", "server", "ann") == {"art": {"text": "server"}}
    with pytest.raises(ValueError):
        await store.templates("discord", "channel", "c1")


# --- lifecycle ----------------------------------------------------------------------------------


async def test_health_and_use_after_close(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "nested" / "bot.db")
    assert await storage.healthy() is False
    await storage.open()
    await storage.open()  # a second open is harmless
    assert await storage.healthy() is True
    await storage.close()
    assert await storage.healthy() is False
    with pytest.raises(StorageClosed):
        await storage.insert_jobs([make_job()])
    with pytest.raises(StorageClosed):
        await storage.get_job("x")


async def test_close_commits_writes_already_submitted(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "bot.db")
    await storage.open()
    jobs = [make_job() for _ in range(30)]
    inserts = [asyncio.create_task(storage.insert_jobs([j])) for j in jobs]
    await asyncio.sleep(0)
    await storage.close()
    await asyncio.gather(*inserts)
    with sqlite3.connect(tmp_path / "bot.db") as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone() == (30,)


async def test_a_lock_held_elsewhere_fails_waiting_writes_together(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "bot.db", busy_timeout=0.5)
    await storage.open()
    try:
        jobs = [make_job() for _ in range(20)]
        await storage.insert_jobs(jobs)
        other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        results = await asyncio.gather(
            *(storage.mark_running(j.id, started_at=T0, attempts=1) for j in jobs), return_exceptions=True
        )
        # One wait for the whole batch, not one per write (which would be ten seconds).
        assert time.monotonic() - started < 5
        assert all(isinstance(r, sqlite3.OperationalError) for r in results)
        other.execute("ROLLBACK")
        other.close()
        await storage.mark_running(jobs[0].id, started_at=T0, attempts=1)
        assert await storage.count_user_jobs("discord", "u1", [JobStatus.RUNNING]) == 1
    finally:
        await storage.close()


def test_synchronous_mode_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        SqliteStorage(tmp_path / "bot.db", synchronous="off")
