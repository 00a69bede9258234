"""The soak, shortened for CI: 3,000 jobs through ``sketch`` with memory sampled as they go.

The full soak is ``python -m bench.soak --jobs 20000`` (about a minute); this runs the same code
in a fresh process, so the RSS it measures is the bot's alone, not the test runner's. After the
warm-up (1,000 jobs) every cache and pool is at its working size: the RSS may grow by at most
10 % over the rest, every job must succeed and each result must be handed over once.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBS = 3000


@pytest.mark.slow
def test_memory_stays_flat_over_3000_jobs_after_warm_up() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--jobs", str(JOBS), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert run.returncode in (0, 1), run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    samples = result["samples"]
    assert len([jobs for jobs, _ in samples if jobs >= result["warmup_jobs"]]) >= 20, samples
    assert result["failed_jobs"] == 0 and result["delivered_jobs"] == JOBS and result["undelivered_jobs"] == 0
    growth = result["rss_growth_fraction"]
    assert growth <= 0.10, f"RSS grew {100 * growth:.1f} % after warm-up: {samples}"
    assert result["ok"] and run.returncode == 0
