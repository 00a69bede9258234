"""Helpers the self-hosted provider tests share: driving a FakeClock while real sockets work."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import pytest

from bot.clock import FakeClock


@contextlib.asynccontextmanager
async def pumping(clock: FakeClock, step: float = 0.25, every: float = 0.002) -> AsyncIterator[None]:
    """Advance ``clock`` by ``step`` every ``every`` real seconds, so polling loops on it run."""

    async def pump() -> None:
        while True:
            await clock.advance(step)
            await asyncio.sleep(every)

    task = asyncio.create_task(pump())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (real time) until ``check()`` holds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def assert_never_logged(caplog: pytest.LogCaptureFixture, secret: str, *messages: str) -> None:
    """``secret`` (or a long part of it) appears in no log record and none of ``messages``."""
    seen = [r.getMessage() for r in caplog.records] + [caplog.text, *messages]
    for text in seen:
        assert secret not in text, "a secret leaked into a log line or an error message"
        assert secret[: max(6, len(secret) // 2)] not in text, "part of a secret leaked"
