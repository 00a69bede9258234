"""The fake's own wall clock: real time plus an offset a test can jump (for token expiry)."""

from __future__ import annotations

import time


class FakeDiscordClock:
    """Seconds since the epoch as the fake sees them; :meth:`jump` moves them forward."""

    def __init__(self) -> None:
        self._offset = 0.0

    def now(self) -> float:
        return time.time() + self._offset

    def jump(self, seconds: float) -> None:
        self._offset += seconds
