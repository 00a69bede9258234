"""``python -m bench``: run every benchmark in its own process and print a table.

With ``--json`` the last line is one JSON object with every figure, its target and whether it
met it. Figures are compared with a baseline measured in the same run where the target is
relative, since these machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.cases import CASES

# figure -> (target, "min" or "max", description)
TARGETS: dict[str, tuple[float, str, str]] = {
    "throughput_jobs_per_s": (1000.0, "min", "(a) pipeline throughput, jobs/s"),
    "throughput_vs_baseline": (0.5, "min", "(a) vs asyncio.Queue + one aiosqlite insert/job"),
    "submit_p50_ms": (50.0, "max", "(b) submit latency p50 at 5,000 queued, ms"),
    "submit_p99_ms": (50.0, "max", "(b) submit latency p99 at 5,000 queued, ms"),
    "saturation_fraction": (0.97, "min", "(c) provider saturation, fraction of 16 jobs/s"),
    "fairness_max_slots": (1.0, "max", "(d) fairness: newcomer's wait behind a flood, slots"),
    "rss_mb_10k_queued": (150.0, "max", "(e) RSS with 10,000 queued jobs, MB"),
    "recover_10k_seconds": (2.0, "max", "(f) recovery of 10,000 queued jobs, s"),
    "rss_growth_fraction": (0.10, "max", "soak: RSS growth after warm-up, fraction"),
}


#: Benchmarks with their own module (run as ``python -m MODULE ARGS``; last stdout line is JSON).
EXTRA_MODULES: dict[str, tuple[str, list[str]]] = {
    "soak": ("bench.soak", ["--jobs", "5000", "--json"]),
}


def run_extra(name: str) -> dict[str, Any]:
    module, args = EXTRA_MODULES[name]
    if importlib.util.find_spec(module) is None:
        return {}
    out = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True)
    if out.returncode != 0:
        return {f"{name}_error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return {k: v for k, v in result.items() if isinstance(v, int | float | str)}


def run_case(name: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "bench.cases", name], capture_output=True, text=True)
    if out.returncode != 0:
        return {f"{name}_error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"}
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def report(figures: dict[str, Any], met: dict[str, bool]) -> str:
    """The figures as a Markdown page, with the machine they were measured on."""
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC with `python -m bench --report BENCHMARKS.md` on "
        f"{os.cpu_count()} cores, Python {platform.python_version()} ({platform.machine()}). Shared machines are "
        "noisy: compare figures from one run, not across runs.",
        "",
        "| figure | measured | target | met |",
        "| --- | ---: | ---: | :---: |",
    ]
    for key, value in figures.items():
        target = TARGETS.get(key)
        if isinstance(value, str) or target is None:
            shown = value if isinstance(value, str) else f"{value:.2f}"
            lines.append(f"| {key} | {shown} | | |")
            continue
        goal, sense, label = target
        bound = ">=" if sense == "min" else "<="
        lines.append(f"| {label} | {value:.2f} | {bound} {goal:g} | {'yes' if met.get(key) else 'no'} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--json", action="store_true", help="end with one JSON object of all figures")
    parser.add_argument("--report", type=Path, metavar="FILE",
                        help="also write the figures as a Markdown report (e.g. BENCHMARKS.md)")
    every = [*CASES, *EXTRA_MODULES]
    parser.add_argument("cases", nargs="*", default=every, help=f"subset of: {', '.join(every)}")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    for name in args.cases:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        figures.update(run_case(name) if name in CASES else run_extra(name))
    met: dict[str, bool] = {}
    print(f"{'figure':<56} {'measured':>12} {'target':>10}  ok")
    for key, value in figures.items():
        target = TARGETS.get(key)
        if isinstance(value, str):
            print(f"{key:<56} {value}")
            continue
        if target is None:
            print(f"{key:<56} {value:>12.2f}")
            continue
        goal, sense, label = target
        ok = value >= goal if sense == "min" else value <= goal
        met[key] = ok
        bound = ">=" if sense == "min" else "<="
        print(f"{label:<56} {value:>12.2f} {bound}{goal:>8g}  {'yes' if ok else 'NO'}")
    if args.report:
        args.report.write_text(report(figures, met))
        print(f"wrote {args.report}", file=sys.stderr)
    if args.json:
        print(json.dumps({"figures": figures, "targets_met": met, "all_met": all(met.values())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
