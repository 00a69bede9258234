"""The core stays platform-free: importing it loads no platform or provider SDK."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("discord", "slack_bolt", "slack_sdk", "openai", "google.genai")

PROBE = """
import importlib, pkgutil, sys
import bot
for info in pkgutil.iter_modules(bot.__path__):
    importlib.import_module("bot." + info.name)
import storage.sqlite, storage.blobs, providers.registry, providers.sketch
bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + ".") for f in %r))
print(",".join(bad))
"""


def test_importing_the_core_loads_no_platform_or_provider_sdk() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE % (FORBIDDEN,)], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"the core pulled in: {out.stdout.strip()}"


def test_the_core_source_never_imports_adapters() -> None:
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import adapters", "from adapters")):
                offenders.append(f"{path.name}: {stripped}")
    assert offenders == []
