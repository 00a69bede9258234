"""The fair queue: which waiting job runs next.

Jobs wait in one lane per provider. Inside a lane each user has a FIFO of their own jobs, and
users take turns (round-robin): the user at the front of the ring gives up one job and moves to
the back. So one user's 500 queued jobs delay another user's first job by at most one slot.
A lane starts a job only while its provider has a free slot, and skips users who already have
their maximum of running jobs.

This module is pure bookkeeping (no I/O, no awaits): durability is storage's job, and the
engine persists a job before pushing it here.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from bot.jobs import Job

UserKey = tuple[str, str]  # (platform, user_id)


def user_key(job: Job) -> UserKey:
    return (job.origin.platform, job.origin.user_id)


@dataclass(frozen=True, slots=True)
class QueuePlace:
    """Where a waiting job stands: 1-based position in its provider's lane."""

    position: int
    lane_length: int


class _Lane:
    """One provider's waiting jobs: a ring of users, each with a FIFO of jobs."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.running = 0
        self.ring: OrderedDict[UserKey, deque[Job]] = OrderedDict()
        self.length = 0

    def push(self, job: Job, *, front: bool = False) -> None:
        key = user_key(job)
        jobs = self.ring.get(key)
        if jobs is None:
            jobs = self.ring[key] = deque()
        if front:
            jobs.appendleft(job)
        else:
            jobs.append(job)
        self.length += 1

    def pop(self, can_run: Callable[[UserKey], bool]) -> Job | None:
        if self.running >= self.slots:
            return None
        for key in list(self.ring):
            if not can_run(key):
                continue
            jobs = self.ring[key]
            job = jobs.popleft()
            self.length -= 1
            if jobs:
                self.ring.move_to_end(key)
            else:
                del self.ring[key]
            self.running += 1
            return job
        return None

    def remove(self, job_id: str) -> Job | None:
        for key, jobs in self.ring.items():
            for job in jobs:
                if job.id == job_id:
                    jobs.remove(job)
                    self.length -= 1
                    if not jobs:
                        del self.ring[key]
                    return job
        return None

    def position_of(self, key: UserKey, job_id: str) -> int | None:
        """One job's position: every user's first k jobs go before round k, plus the earlier users of round k."""
        jobs = self.ring.get(key)
        if jobs is None:
            return None
        k = next((len(jobs) - 1 - i for i, job in enumerate(reversed(jobs)) if job.id == job_id), None)
        if k is None:
            return None
        position = 1 + k
        before_in_ring = True
        for other_key, other in self.ring.items():
            if other_key == key:
                before_in_ring = False
            else:
                position += min(len(other), k + 1 if before_in_ring else k)
        return position

    def places(self) -> Iterator[tuple[Job, int]]:
        """Every waiting job with its 1-based position, in O(jobs).

        Round-robin serves round k as the k-th job of every user with more than k jobs, in ring
        order; a job's position is all jobs of earlier rounds plus those before it in its round.
        """
        longest = max((len(j) for j in self.ring.values()), default=0)
        per_round = [0] * longest
        for jobs in self.ring.values():
            for k in range(len(jobs)):
                per_round[k] += 1
        before = [0] * longest
        for k in range(1, longest):
            before[k] = before[k - 1] + per_round[k - 1]
        seen = [0] * longest
        for jobs in self.ring.values():
            for k, job in enumerate(jobs):
                seen[k] += 1
                yield job, before[k] + seen[k]


class FairQueue:
    """Waiting jobs in per-provider lanes, served round-robin across users."""

    def __init__(
        self,
        slots: Mapping[str, int],
        *,
        max_running_per_user: Callable[[UserKey], int] | None = None,
    ) -> None:
        self._lanes = {name: _Lane(n) for name, n in slots.items()}
        self._where: dict[str, tuple[str, UserKey]] = {}  # job id -> (lane name, user), for waiting jobs
        self._running_by_user: dict[UserKey, int] = {}
        self._queued_by_user: dict[UserKey, int] = {}
        self._max_running = max_running_per_user or (lambda _key: 1_000_000)

    # --- adding and taking -----------------------------------------------------------------
    def push(self, job: Job, *, front: bool = False) -> None:
        """Add a waiting job (``front``: ahead of the user's other jobs, for retries)."""
        lane = self._lane(job.provider)
        lane.push(job, front=front)
        key = user_key(job)
        self._where[job.id] = (job.provider, key)
        self._queued_by_user[key] = self._queued_by_user.get(key, 0) + 1

    def pop_ready(self) -> Job | None:
        """The next job to start, or None when no lane has both a free slot and a runnable job."""
        for lane in self._lanes.values():
            if not lane.length:
                continue
            job = lane.pop(self._can_run)
            if job is not None:
                del self._where[job.id]
                key = user_key(job)
                self._dec(self._queued_by_user, key)
                self._running_by_user[key] = self._running_by_user.get(key, 0) + 1
                return job
        return None

    def release(self, job: Job) -> None:
        """A started job stopped running (finished, failed, cancelled, or waits for a retry)."""
        self._lane(job.provider).running -= 1
        self._dec(self._running_by_user, user_key(job))

    def remove(self, job_id: str) -> Job | None:
        """Take a waiting job out (cancel); None if it is not waiting."""
        where = self._where.pop(job_id, None)
        if where is None:
            return None
        job = self._lanes[where[0]].remove(job_id)
        if job is not None:
            self._dec(self._queued_by_user, user_key(job))
        return job

    # --- looking -----------------------------------------------------------------------------
    def __contains__(self, job_id: object) -> bool:
        return job_id in self._where

    def __len__(self) -> int:
        return len(self._where)

    def waiting_in(self, provider: str) -> int:
        lane = self._lanes.get(provider)
        return lane.length if lane else 0

    def running_in(self, provider: str) -> int:
        lane = self._lanes.get(provider)
        return lane.running if lane else 0

    def slots(self, provider: str) -> int:
        return self._lane(provider).slots

    def queued_for(self, key: UserKey) -> int:
        return self._queued_by_user.get(key, 0)

    def running_for(self, key: UserKey) -> int:
        return self._running_by_user.get(key, 0)

    def place(self, job_id: str) -> QueuePlace | None:
        """Position of one waiting job, in O(users in its lane + the job's place in its user's line)."""
        where = self._where.get(job_id)
        if where is None:
            return None
        lane = self._lanes[where[0]]
        position = lane.position_of(where[1], job_id)
        return None if position is None else QueuePlace(position, lane.length)

    def all_places(self) -> Iterator[tuple[Job, QueuePlace]]:
        """Every waiting job with its position, O(total waiting jobs)."""
        for lane in self._lanes.values():
            for job, position in lane.places():
                yield job, QueuePlace(position, lane.length)

    def waiting_jobs(self) -> Iterator[Job]:
        for lane in self._lanes.values():
            for jobs in lane.ring.values():
                yield from jobs

    # --- internals ---------------------------------------------------------------------------
    def _lane(self, provider: str) -> _Lane:
        lane = self._lanes.get(provider)
        if lane is None:
            lane = self._lanes[provider] = _Lane(1)
        return lane

    def _can_run(self, key: UserKey) -> bool:
        return self._running_by_user.get(key, 0) < self._max_running(key)

    @staticmethod
    def _dec(counts: dict[UserKey, int], key: UserKey) -> None:
        left = counts.get(key, 0) - 1
        if left > 0:
            counts[key] = left
        else:
            counts.pop(key, None)
