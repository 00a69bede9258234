"""A surface that records what users would see: every card frame and every delivery."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from bot.jobs import JobStatus
from bot.surface import Card, Delivery, ThrottlePolicy

FAST = ThrottlePolicy(per_message_seconds=0.0, window_edits=10_000, window_seconds=1.0)


@dataclass
class RecordingSurface:
    """Keeps each job's frames and deliveries; ``wait_final`` waits for a job's final state."""

    name: str = "web"
    upload_limit_bytes: int = 8 * 1024 * 1024
    max_files: int = 10
    throttle: ThrottlePolicy = FAST
    frames: dict[str, list[Card]] = field(default_factory=dict)
    deliveries: dict[str, list[Delivery]] = field(default_factory=dict)
    fail_deliveries: int = 0
    _final: dict[str, asyncio.Event] = field(default_factory=dict)

    async def show(self, card: Card) -> dict[str, str] | None:
        self.frames.setdefault(card.job.id, []).append(card)
        if card.final and card.status is not JobStatus.SUCCEEDED:
            self._event(card.job.id).set()
        return {"card": f"msg-{card.job.id}"}

    async def deliver(self, delivery: Delivery) -> dict[str, str] | None:
        if self.fail_deliveries:
            self.fail_deliveries -= 1
            raise ConnectionError("platform unavailable")
        self.deliveries.setdefault(delivery.job.id, []).append(delivery)
        self._event(delivery.job.id).set()
        return {"result": f"res-{delivery.job.id}"}

    async def wait_final(self, job_id: str, timeout: float = 10.0) -> Card:
        await asyncio.wait_for(self._event(job_id).wait(), timeout)
        # The final card is sent before the images, so it is always the last frame by now.
        return self.frames[job_id][-1]

    def statuses(self, job_id: str) -> list[JobStatus]:
        return [c.status for c in self.frames.get(job_id, [])]

    def _event(self, job_id: str) -> asyncio.Event:
        return self._final.setdefault(job_id, asyncio.Event())
