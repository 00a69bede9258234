"""Estimated waits: a moving average of recent job durations per provider."""

from __future__ import annotations

import math


class DurationStats:
    """Exponential moving average of how long jobs take on each provider."""

    def __init__(self, *, prior_seconds: float = 20.0, weight: float = 0.2) -> None:
        self._prior = prior_seconds
        self._weight = weight
        self._avg: dict[str, float] = {}

    def record(self, provider: str, seconds: float) -> None:
        seconds = max(0.0, seconds)
        old = self._avg.get(provider)
        self._avg[provider] = seconds if old is None else old + self._weight * (seconds - old)

    def average(self, provider: str) -> float:
        return self._avg.get(provider, self._prior)

    def eta(self, provider: str, position: int, slots: int) -> float:
        """Seconds until a job at ``position`` (1-based) in a lane with ``slots`` finishes.

        The jobs ahead run ``slots`` at a time; the job itself then takes one average duration.
        """
        rounds_ahead = math.ceil(position / max(1, slots))
        return rounds_ahead * self.average(provider)
