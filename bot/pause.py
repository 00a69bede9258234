"""Holding new work back while storage is sick (a full or read-only disk).

Every job started then would run its provider (paid, for the cloud ones) only to fail saving the
images. So each storage fault pauses the dispatcher: first for ``base`` seconds, doubling with each
fault in a row up to ``cap``; the first job after a pause is the probe, and a good write ends the
streak. Time is the injected clock's monotonic time.
"""

from __future__ import annotations

from bot.clock import Clock


class StoragePause:
    """Exponential pauses while storage faults keep coming; reset by a successful write."""

    def __init__(self, clock: Clock, *, base: float, cap: float) -> None:
        self._clock = clock
        self._base = max(base, 0.05)
        self._cap = max(cap, self._base)
        self._faults = 0
        self._until = 0.0

    def fault(self) -> float:
        """Record a fault; returns the pause it starts (seconds)."""
        self._faults += 1
        pause = min(self._cap, self._base * 2.0 ** (self._faults - 1))
        self._until = max(self._until, self._clock.monotonic() + pause)
        return pause

    def ok(self) -> None:
        """A write succeeded: storage is well again."""
        self._faults = 0
        self._until = 0.0

    @property
    def faults(self) -> int:
        """Faults in a row so far."""
        return self._faults

    def remaining(self) -> float:
        """Seconds until new work may start (0 when it may now)."""
        return max(0.0, self._until - self._clock.monotonic())
