"""One life of the bot in the SIGKILL chaos run: recover, submit what is still missing, work, exit.

``python -m tests.reliability.chaos_child DATA_DIR TOTAL``. Every life starts the app (recovering
whatever the killed one left), submits the prompts ``0..TOTAL-1`` that ``accepted.log`` does not
list yet, and runs until nothing is unfinished or undelivered, then prints ``idle``. It prints
``ready`` once recovery is done, ``accepted I ID`` after a submit returned (the job is durable; the
line is also appended to ``accepted.log``, fsynced) and ``delivered ID`` when the surface posted
a result. The surface posts each delivery key once (as real surfaces do, with the ids they keep)
and logs every offer, so the test sees how often the core asked.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from bot.app import build_app
from bot.config import config_from_dict
from bot.jobs import Origin
from bot.surface import Card, Delivery
from tests.fakes.surface import FAST

UNLIMITED = {"per_user_per_minute": 1e6, "burst": 100_000, "max_queued_per_user": 100_000,
             "daily_images_per_user": 0, "daily_images_per_server": 0}


class ChaosSurface:
    name = "web"
    upload_limit_bytes = 8 * 1024 * 1024
    max_files = 10
    throttle = FAST

    def __init__(self, root: Path) -> None:
        self.offers = root / "offers.log"
        self.posted = root / "posted.log"
        self.seen = set(self.posted.read_text().split()) if self.posted.exists() else set()

    async def show(self, card: Card) -> dict[str, str] | None:
        return None

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        append(self.offers, delivery.job.id)
        if delivery.job.id not in self.seen:
            self.seen.add(delivery.job.id)
            append(self.posted, delivery.job.id)
            print(f"delivered {delivery.job.id}", flush=True)
        return None


def append(path: Path, line: str) -> None:
    with path.open("a") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())


def accepted_indices(root: Path) -> set[int]:
    path = root / "accepted.log"
    if not path.exists():
        return set()
    # A kill can cut the last line short: only whole lines count.
    return {int(line.split()[0]) for line in path.read_text().splitlines() if len(line.split()) == 2}


async def main(root: Path, total: int) -> None:
    config = config_from_dict({
        "storage": {"dir": str(root / "data")},
        "providers": {"sketch": {"type": "sketch", "delay": 0.03, "size": 64, "preview_frames": 1,
                                 "concurrency": 3}},
        "queue": {"max_attempts": 20},
        "limits": UNLIMITED,
    }, environ={})
    app = await build_app(config)
    app.add_surface(ChaosSurface(root))
    await app.start()
    print("ready", flush=True)
    done = accepted_indices(root)
    for i in range(total):
        if i in done:
            continue
        origin = Origin(platform="web", server_id="s", channel_id=f"c{i % 4}", user_id=f"u{i % 7}")
        [job] = await app.service.submit(f"chaos {i} --n 1", origin)
        append(root / "accepted.log", f"{i} {job.id}")
        print(f"accepted {i} {job.id}", flush=True)
    for _ in range(6000):  # bounded: 5 minutes at most
        if not await app.storage.unfinished_jobs() and not await app.storage.undelivered_jobs():
            print("idle", flush=True)
            break
        await asyncio.sleep(0.05)
    await app.stop(grace_seconds=0)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
