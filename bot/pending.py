"""Images and money promised to accepted jobs that have not finished yet.

Quotas count today's usage from storage plus what is still pending, so a user cannot queue
past a daily cap or a budget before the first of their jobs finishes.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.jobs import Job


@dataclass(slots=True)
class _Tally:
    jobs: int = 0
    images: int = 0
    cost: float = 0.0


class PendingLedger:
    """Running totals per user and per server of unfinished jobs' images and estimated cost."""

    def __init__(self) -> None:
        self._by_job: dict[str, tuple[int, float]] = {}
        self._users: dict[tuple[str, str], _Tally] = {}
        self._servers: dict[tuple[str, str], _Tally] = {}
        self.total_jobs = 0

    def add(self, job: Job, *, images: int, cost_usd: float) -> None:
        if job.id in self._by_job:
            return
        self._by_job[job.id] = (images, cost_usd)
        self.total_jobs += 1
        for table, key in self._keys(job):
            tally = table.setdefault(key, _Tally())
            tally.jobs += 1
            tally.images += images
            tally.cost += cost_usd

    def remove(self, job: Job) -> None:
        entry = self._by_job.pop(job.id, None)
        if entry is None:
            return
        images, cost = entry
        self.total_jobs -= 1
        for table, key in self._keys(job):
            tally = table[key]
            tally.jobs -= 1
            tally.images -= images
            tally.cost -= cost
            if tally.jobs <= 0:
                del table[key]

    def user(self, platform: str, user_id: str) -> tuple[int, int]:
        """(jobs, images) pending for a user."""
        tally = self._users.get((platform, user_id))
        return (tally.jobs, tally.images) if tally else (0, 0)

    def server(self, platform: str, server_id: str) -> tuple[int, float]:
        """(images, estimated USD) pending for a server."""
        tally = self._servers.get((platform, server_id))
        return (tally.images, tally.cost) if tally else (0, 0.0)

    def _keys(self, job: Job) -> list[tuple[dict[tuple[str, str], _Tally], tuple[str, str]]]:
        o = job.origin
        return [(self._users, (o.platform, o.user_id)), (self._servers, (o.platform, o.server_id))]
