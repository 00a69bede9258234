"""The benchmark runner works end to end and reports every figure (figures are not judged here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.__main__ import report

ROOT = Path(__file__).resolve().parents[1]


def test_bench_json_ends_with_one_object_holding_the_figures(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "--json", "--report", str(tmp_path / "B.md"), "fairness"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(last) == {"figures", "targets_met", "all_met"}
    assert isinstance(last["figures"]["fairness_max_slots"], float)
    assert "| (d) fairness" in (tmp_path / "B.md").read_text()


def test_report_marks_met_and_missed_targets() -> None:
    text = report({"submit_p99_ms": 80.0, "recover_10k_seconds": 0.5, "extra": 3.0},
                  {"submit_p99_ms": False, "recover_10k_seconds": True})
    assert "| 80.00 | <= 50 | no |" in text and "| 0.50 | <= 2 | yes |" in text and "| extra | 3.00 |" in text
