"""The benchmark cases; each runs in its own process (``python -m bench.cases NAME``) and prints JSON."""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiosqlite

from bot.app import App, build_app
from bot.config import config_from_dict
from bot.jobs import Job, Origin
from bot.surface import Card, Delivery, ThrottlePolicy

UNLIMITED = {
    "per_user_per_minute": 1e9, "burst": 1_000_000, "max_queued_per_user": 1_000_000,
    "max_running_per_user": 64, "daily_images_per_user": 0, "daily_images_per_server": 0,
    "daily_budget_usd_per_server": 0, "max_queue_size": 1_000_000,
}


class NullSurface:
    """Accepts every card and delivery and does nothing with them."""

    name = "web"
    upload_limit_bytes = 25 * 1024 * 1024
    max_files = 10
    throttle = ThrottlePolicy(per_message_seconds=0.0, window_edits=1_000_000, window_seconds=1.0)

    async def show(self, card: Card) -> dict[str, str] | None:
        return None

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        return None


async def _app(root: Path, *, delay: float, concurrency: int, frames: int = 0) -> App:
    config = config_from_dict({
        "storage": {"dir": str(root)},
        "providers": {"sketch": {"type": "sketch", "delay": delay, "size": 64,
                                 "preview_frames": frames, "concurrency": concurrency}},
        "limits": UNLIMITED,
    }, environ={})
    app = await build_app(config)
    app.add_surface(NullSurface())
    return app


def _origin(user: int) -> Origin:
    return Origin(platform="web", server_id="bench", channel_id=f"c{user % 7}", user_id=f"user{user}")


async def _submit_all(app: App, users: int, per_user: int) -> list[Job]:
    jobs: list[Job] = []

    async def one_user(u: int) -> None:
        for i in range(per_user):
            jobs.extend(await app.service.submit(f"benchmark prompt {u} {i} --n 1", _origin(u)))

    await asyncio.gather(*(one_user(u) for u in range(users)))
    return jobs


async def _until(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark did not finish in time")
        await asyncio.sleep(0.01)


# --- (a) pipeline throughput ---------------------------------------------------------------------
async def throughput(root: Path, jobs: int = 10_000, users: int = 500) -> dict[str, float]:
    app = await _app(root / "a", delay=0.0, concurrency=64)
    done = 0

    def finished(job: Job) -> None:
        nonlocal done
        done += 1

    app.engine.on_finished.append(finished)
    await app.start()
    start = time.perf_counter()
    await _submit_all(app, users, jobs // users)
    await _until(lambda: done >= jobs, 600)
    await _until(lambda: not app.engine._background, 600)  # deliveries handed over too
    elapsed = time.perf_counter() - start
    await app.stop(0)
    baseline = await _baseline(root / "baseline.db", jobs)
    tuned = await _baseline(root / "baseline-wal.db", jobs, wal=True)
    rate = jobs / elapsed
    return {
        "throughput_jobs_per_s": rate,
        "baseline_jobs_per_s": baseline,
        "throughput_vs_baseline": rate / baseline,
        "baseline_wal_jobs_per_s": tuned,
        "throughput_vs_baseline_wal": rate / tuned,
    }


async def _baseline(path: Path, jobs: int, *, wal: bool = False) -> float:
    """A bare asyncio.Queue and one aiosqlite insert (and commit) per job.

    Bare means aiosqlite's defaults: a rollback journal with synchronous=FULL, so each commit is
    durable against power loss. ``wal`` gives the tuned variant (WAL, synchronous=NORMAL: durable
    against a crash of the process, as imaginebot's default), reported beside it.
    """
    db = await aiosqlite.connect(path)
    if wal:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
    await db.execute("CREATE TABLE jobs (id INTEGER PRIMARY KEY, user TEXT, prompt TEXT)")
    queue: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
    start = time.perf_counter()
    for i in range(jobs):
        queue.put_nowait((i, f"user{i % 500}"))

    async def worker() -> None:
        while not queue.empty():
            i, user = queue.get_nowait()
            await db.execute("INSERT INTO jobs VALUES (?, ?, ?)", (i, user, f"benchmark prompt {i}"))
            await db.commit()

    await asyncio.gather(*(worker() for _ in range(16)))
    elapsed = time.perf_counter() - start
    await db.close()
    return jobs / elapsed


# --- (b) submit latency under a deep queue --------------------------------------------------------
async def latency(root: Path, queued: int = 5000, samples: int = 300) -> dict[str, float]:
    app = await _app(root / "b", delay=3600.0, concurrency=1)
    await app.start()
    await _submit_all(app, 250, queued // 250)
    timings = []
    for i in range(samples):
        t = time.perf_counter()
        await app.service.submit(f"latency probe {i} --n 1", _origin(1000 + i % 50))
        timings.append((time.perf_counter() - t) * 1000)
    await app.stop(0)
    timings.sort()
    return {"submit_p50_ms": statistics.median(timings), "submit_p99_ms": timings[int(0.99 * len(timings)) - 1]}


# --- (c) provider saturation -------------------------------------------------------------------
async def saturation(root: Path, jobs: int = 240) -> dict[str, float]:
    app = await _app(root / "c", delay=0.5, concurrency=8, frames=4)
    first_start: list[float] = []
    finished: list[float] = []
    app.engine.on_started.append(lambda job: first_start.append(time.perf_counter()))
    app.engine.on_finished.append(lambda job: finished.append(time.perf_counter()))
    await app.start()
    await _submit_all(app, 40, jobs // 40)
    await _until(lambda: len(finished) >= jobs, 120)
    elapsed = max(finished) - min(first_start)
    await app.stop(0)
    return {"saturation_fraction": (jobs / elapsed) / 16.0}


# --- (d) fairness -----------------------------------------------------------------------------------
async def fairness(root: Path) -> dict[str, float]:
    app = await _app(root / "d", delay=0.01, concurrency=1)
    order: list[str] = []
    app.engine.on_started.append(lambda job: order.append(job.origin.user_id))
    await app.start()
    flood = _origin(0)
    for i in range(500):
        await app.service.submit(f"flood {i} --n 1", flood)
    await _until(lambda: len(order) >= 3, 30)
    submitted_at = {}
    for u in range(1, 21):
        await app.service.submit(f"newcomer {u} --n 1", _origin(u))
        # Counted from the moment the job is queued (submit has returned), as the user sees it.
        submitted_at[f"user{u}"] = len(order)
    await _until(lambda: all(f"user{u}" in order for u in range(1, 21)), 120)
    await app.stop(0)
    delays = []
    for user, mark in submitted_at.items():
        started = order.index(user)
        # Slots the flooder took between this user's submit and this user's start.
        delays.append(sum(1 for x in order[mark:started] if x == "user0"))
    return {"fairness_max_slots": float(max(delays)), "fairness_mean_slots": statistics.mean(delays)}


# --- (e) memory and (f) recovery ---------------------------------------------------------------
def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def memory(root: Path, jobs: int = 10_000) -> dict[str, float]:
    app = await _app(root / "e", delay=3600.0, concurrency=1)
    await app.start()
    before = _rss_mb()
    await _submit_all(app, 500, jobs // 500)
    await asyncio.sleep(2.5)  # let position refreshes run once
    after = _rss_mb()
    await app.stop(0)
    return {"rss_mb_10k_queued": after, "rss_mb_idle": before}


async def recovery(root: Path, jobs: int = 10_000) -> dict[str, float]:
    app = await _app(root / "f", delay=3600.0, concurrency=1)
    await app.start()
    await _submit_all(app, 500, jobs // 500)
    await app.stop(0)
    again = await _app(root / "f", delay=3600.0, concurrency=1)
    start = time.perf_counter()
    await again.start()
    elapsed = time.perf_counter() - start
    waiting = len(again.engine.queue) + again.engine.queue.running_in("sketch")
    stored = len(await again.storage.unfinished_jobs())
    await again.stop(0)
    if waiting != jobs or stored != jobs:
        raise AssertionError(f"recovered {waiting} of {jobs} jobs ({stored} in storage)")
    return {"recover_10k_seconds": elapsed}


CASES = {
    "throughput": throughput, "latency": latency, "saturation": saturation,
    "fairness": fairness, "memory": memory, "recovery": recovery,
}


def main() -> None:
    name = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix=f"imaginebot-bench-{name}-") as tmp:
        result = asyncio.run(CASES[name](Path(tmp)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
