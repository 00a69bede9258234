"""A bot process for the crash test: submits jobs (or only resumes) and logs deliveries to files.

Run as ``python -m tests.bot.crash_child DATA_DIR submit N`` or ``... resume``. It prints
``accepted <id>`` once a submit returned (the job is durable) and ``delivered <id>`` when its
surface got the images. The surface de-duplicates by the delivery key, as real surfaces do,
and logs every call so the test can see how often the core asked.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.app import build_app
from bot.config import config_from_dict
from bot.jobs import JobStatus, Origin
from bot.surface import Card, Delivery
from tests.fakes.surface import FAST


class FileLogSurface:
    name = "web"
    upload_limit_bytes = 8 * 1024 * 1024
    max_files = 10
    throttle = FAST

    def __init__(self, root: Path) -> None:
        self.calls = root / "deliver-calls.log"
        self.log = root / "delivered.log"
        self.seen = set(self.log.read_text().split()) if self.log.exists() else set()

    async def show(self, card: Card) -> dict[str, str] | None:
        return None

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        _append(self.calls, delivery.key)
        if delivery.key not in self.seen:
            self.seen.add(delivery.key)
            _append(self.log, delivery.key)
            print(f"delivered {delivery.job.id}", flush=True)
        return None


def _append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


async def main(root: Path, mode: str, count: int) -> None:
    config = config_from_dict({
        "storage": {"dir": str(root / "data")},
        "providers": {"sketch": {"type": "sketch", "delay": 0.05, "size": 64, "preview_frames": 1,
                                 "concurrency": 3}},
        "queue": {"max_attempts": 20},
        "limits": {"max_queued_per_user": 1000, "burst": 1000, "per_user_per_minute": 100000},
    }, environ={})
    app = await build_app(config)
    surface = FileLogSurface(root)
    app.add_surface(surface)
    await app.start()
    if mode == "submit":
        for i in range(count):
            origin = Origin(platform="web", server_id="s", channel_id="c", user_id=f"u{i % 5}")
            [job] = await app.service.submit(f"crash test {i} --n 1", origin)
            print(f"accepted {job.id}", flush=True)
    while True:
        unfinished = await app.storage.unfinished_jobs()
        undelivered = await app.storage.undelivered_jobs()
        if not unfinished and not undelivered:
            break
        await asyncio.sleep(0.05)
    done = await app.storage.user_jobs("web", "u0", [JobStatus.SUCCEEDED])
    print(f"idle {len(done)}", flush=True)
    await app.stop(grace_seconds=0)


if __name__ == "__main__":
    mode = sys.argv[2]
    asyncio.run(main(Path(sys.argv[1]), mode, int(sys.argv[3]) if mode == "submit" else 0))
