"""The soak: thousands of jobs through ``sketch`` with the process's memory sampled as they go.

``python -m bench.soak --jobs 20000`` runs the bot in this process (real SQLite and blob files in a
temporary folder, the sketch provider with no delay, a surface that accepts everything) and keeps a
steady window of jobs in flight from many users. It prints the resident set size (RSS) every
``--every`` finished jobs, then the growth after the warm-up: what a leak would show, since after
warm-up every cache and pool the bot keeps is at its working size. ``--json`` ends with one JSON
object (the figures, and the samples); the CI test runs a shorter soak the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.app import build_app
from bot.config import config_from_dict
from bot.jobs import Job, JobStatus, Origin
from bot.surface import Card, Delivery, ThrottlePolicy

UNLIMITED = {
    "per_user_per_minute": 1e9, "burst": 1_000_000, "max_queued_per_user": 1_000_000,
    "max_running_per_user": 64, "daily_images_per_user": 0, "daily_images_per_server": 0,
    "daily_budget_usd_per_server": 0, "max_queue_size": 1_000_000,
}
USERS = 60
CHANNELS = 12
#: Jobs waiting or running at once: enough to keep every slot busy, few enough that the queue's
#: own size stays flat (it is not what a soak measures).
WINDOW = 200
#: How often the progress of a job is shown; cards are edited as on a busy server.
FRAMES = 1


class CountingSurface:
    """Accepts every card and delivery, counting them."""

    name = "web"
    upload_limit_bytes = 25 * 1024 * 1024
    max_files = 10
    throttle = ThrottlePolicy(per_message_seconds=0.0, window_edits=1_000_000, window_seconds=1.0)

    def __init__(self) -> None:
        self.cards = 0
        self.delivered = 0

    async def show(self, card: Card) -> dict[str, str] | None:
        self.cards += 1
        return None

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        self.delivered += 1
        return {"result": f"r{delivery.job.id}"}


def rss_bytes() -> int:
    """This process's resident set size now (Linux), or its peak where /proc is missing."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
        return resident_pages * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _mb(n: int) -> float:
    return round(n / (1024 * 1024), 1)


class Sampler:
    """RSS samples: one after the warm-up (the baseline), then one every ``every`` finished jobs."""

    def __init__(self, warmup: int, every: int, echo: bool) -> None:
        self.warmup = warmup
        self.next = every
        self.every = every
        self.echo = echo
        self.baseline = 0
        self.samples: list[tuple[int, float]] = []

    def __call__(self, finished: int) -> None:
        if finished >= self.warmup and not self.baseline:
            gc.collect()
            self.baseline = rss_bytes()
            self.samples.append((finished, _mb(self.baseline)))
            if self.echo:
                print(f"warm-up done after {finished} jobs: RSS {_mb(self.baseline)} MB", flush=True)
        if finished >= self.next:
            self.next += self.every
            self.samples.append((finished, _mb(rss_bytes())))
            if self.echo:
                print(f"{finished:>7} jobs  RSS {self.samples[-1][1]:>7.1f} MB", flush=True)


async def soak(root: Path, jobs: int, warmup: int, every: int, echo: bool) -> dict[str, Any]:
    config = config_from_dict({
        "storage": {"dir": str(root)},
        "providers": {"sketch": {"type": "sketch", "delay": 0.0, "size": 64, "preview_frames": FRAMES,
                                 "concurrency": 16}},
        "limits": UNLIMITED,
    }, environ={})
    app = await build_app(config)
    surface = CountingSurface()
    app.add_surface(surface)
    sampler = Sampler(warmup, every, echo)
    counts = {"submitted": 0, "finished": 0, "failed": 0}
    room = asyncio.Condition()

    def on_finished(job: Job) -> None:
        counts["finished"] += 1
        counts["failed"] += job.status is not JobStatus.SUCCEEDED
        sampler(counts["finished"])
        asyncio.get_running_loop().create_task(_notify(room))

    async def producer() -> None:
        while counts["submitted"] < jobs:
            async with room:
                await room.wait_for(lambda: counts["submitted"] - counts["finished"] < WINDOW)
            n = counts["submitted"]
            if n >= jobs:
                return
            counts["submitted"] += 1
            user = n % USERS
            origin = Origin(platform="web", server_id="soak", channel_id=f"c{user % CHANNELS}",
                            user_id=f"user{user}")
            await app.service.submit(f"soak {n} of a lighthouse at dusk --n 1", origin)

    app.engine.on_finished.append(on_finished)
    await app.start()
    began = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(producer() for _ in range(8))), max(600.0, jobs * 0.05))
    deadline = time.monotonic() + max(600.0, jobs * 0.05)
    while counts["finished"] < jobs or app.engine._background:  # the last deliveries, handed over
        if time.monotonic() > deadline:
            raise TimeoutError(f"the soak stalled at {counts['finished']} of {jobs} jobs")
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - began
    gc.collect()
    final = rss_bytes()
    undelivered = len(await app.storage.undelivered_jobs())
    await app.stop(grace_seconds=0)
    baseline = sampler.baseline
    return {
        "jobs": jobs, "warmup_jobs": warmup, "failed_jobs": counts["failed"], "delivered_jobs": surface.delivered,
        "undelivered_jobs": undelivered, "seconds": round(elapsed, 2), "jobs_per_s": round(jobs / elapsed, 1),
        "rss_mb_after_warmup": _mb(baseline), "rss_mb_final": _mb(final),
        "rss_mb_peak": max([mb for _, mb in sampler.samples] + [_mb(final)]),
        "rss_growth_fraction": round((final - baseline) / baseline, 4), "samples": sampler.samples,
    }


async def _notify(room: asyncio.Condition) -> None:
    async with room:
        room.notify_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, help="jobs before the baseline sample (default: a tenth, >= 1000)")
    parser.add_argument("--every", type=int, help="jobs between samples (default: a fortieth)")
    parser.add_argument("--max-growth", type=float, default=0.10, help="fail (exit 1) above this RSS growth")
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    args = parser.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(args.jobs // 2, max(1000, args.jobs // 10))
    every = args.every or max(1, args.jobs // 40)
    with tempfile.TemporaryDirectory(prefix="imaginebot-soak-") as tmp:
        result = asyncio.run(soak(Path(tmp), args.jobs, warmup, every, echo=not args.json))
    ok = (result["rss_growth_fraction"] <= args.max_growth and result["failed_jobs"] == 0
          and result["delivered_jobs"] == args.jobs and result["undelivered_jobs"] == 0)
    result["ok"] = ok
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['jobs']} jobs in {result['seconds']} s ({result['jobs_per_s']} jobs/s); RSS after warm-up "
              f"{result['rss_mb_after_warmup']} MB, at the end {result['rss_mb_final']} MB, peak "
              f"{result['rss_mb_peak']} MB: growth {100 * result['rss_growth_fraction']:.1f} % "
              f"(limit {100 * args.max_growth:g} %): {'ok' if ok else 'TOO MUCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
