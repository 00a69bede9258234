"""Injected time: every limiter, throttle and scheduler takes a :class:`Clock`.

``now()`` is wall time (seconds since the epoch) for timestamps and daily windows;
``monotonic()`` is for intervals. Tests use :class:`FakeClock` and step time with ``advance``
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Wall-clock seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds from an arbitrary start; never goes backwards."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class FakeClock:
    """A clock that only moves when a test calls :meth:`advance` (or :meth:`set`).

    ``sleep`` parks the caller until the clock passes its deadline. ``advance`` wakes sleepers in
    deadline order and lets the event loop run between them, so code that sleeps in a loop sees
    every intermediate time.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._mono = 1000.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    @property
    def sleepers(self) -> int:
        """How many coroutines are waiting on this clock."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._mono + seconds, next(self._seq), fut))
        await fut

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking sleepers in order."""
        target = self._mono + seconds
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, fut = heapq.heappop(self._sleepers)
            if fut.done():
                continue
            self._step_to(max(deadline, self._mono))
            fut.set_result(None)
            await _settle()
        self._step_to(target)
        await _settle()

    def jump_wall(self, seconds: float) -> None:
        """Move only the wall clock (as NTP might); monotonic time is unaffected."""
        self._now += seconds

    def _step_to(self, mono: float) -> None:
        self._now += mono - self._mono
        self._mono = mono


async def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
