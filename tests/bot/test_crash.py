"""SIGKILL the bot mid-work, start it again: every accepted job completes and is delivered once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _child(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bot.crash_child", str(tmp_path), *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _read_until(proc: subprocess.Popen[str], predicate, deadline: float) -> list[str]:  # type: ignore[no-untyped-def]
    lines: list[str] = []
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.strip())
        if predicate(lines):
            break
    return lines


def test_sigkill_mid_work_loses_nothing_and_delivers_once(tmp_path: Path) -> None:
    total = 60
    first = _child(tmp_path, "submit", str(total))
    lines = _read_until(
        first,
        lambda ls: sum(x.startswith("accepted") for x in ls) == total
        and sum(x.startswith("delivered") for x in ls) >= 15,
        time.monotonic() + 60,
    )
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert first.stdout is not None
    first.stdout.close()
    accepted = {x.split()[1] for x in lines if x.startswith("accepted")}
    delivered_before = {x.split()[1] for x in lines if x.startswith("delivered")}
    assert len(accepted) == total and 0 < len(delivered_before) < total, "the kill landed mid-work"

    second = _child(tmp_path, "resume")
    tail = _read_until(second, lambda ls: any(x.startswith("idle") for x in ls), time.monotonic() + 90)
    second.wait(timeout=30)
    assert second.stdout is not None
    second.stdout.close()
    assert any(x.startswith("idle") for x in tail), tail

    delivered = Counter((tmp_path / "delivered.log").read_text().split())
    assert set(delivered) == {f"deliver:{job_id}" for job_id in accepted}
    assert max(delivered.values()) == 1
    calls = Counter((tmp_path / "deliver-calls.log").read_text().split())
    # The core re-offers a delivery only when the crash hit between handing it over and
    # recording it: at most once more, and for at most the jobs that were in flight.
    assert max(calls.values()) <= 2
    assert sum(1 for n in calls.values() if n == 2) <= 3
