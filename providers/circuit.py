"""A circuit breaker per provider, so a provider that keeps failing is skipped at once.

After ``threshold`` calls in a row fail as unavailable (5xx, timeouts, connection errors) the
circuit opens: calls fail fast with ``ProviderUnavailable`` and the runner's fallback chain
takes over without waiting for another timeout. After ``cooldown`` seconds one trial call is
let through (half-open); its success closes the circuit, its failure opens it again.
Time comes from the injected clock.
"""

from __future__ import annotations

from bot.clock import Clock
from bot.errors import ProviderUnavailable


class CircuitBreaker:
    """Counts consecutive failures of one provider and opens after ``threshold`` of them."""

    def __init__(self, *, threshold: int, cooldown: float, clock: Clock) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> str:
        """"closed", "open" or "half-open"."""
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self.cooldown:
            return "half-open"
        return "open"

    def check(self, provider: str) -> None:
        """Raise ``ProviderUnavailable`` while open; in half-open, let a single trial call through."""
        state = self.state
        if state == "closed":
            return
        if state == "half-open" and not self._trial:
            self._trial = True
            return
        wait = self.cooldown - (self._clock.monotonic() - (self._opened_at or 0.0))
        raise ProviderUnavailable(
            f"circuit open after {self._failures} failures in a row", provider=provider, retry_after=max(0.0, wait)
        )

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._trial = False

    def failed(self) -> None:
        self._failures += 1
        if self._trial or self._failures >= self.threshold:
            self._opened_at = self._clock.monotonic()
        self._trial = False
