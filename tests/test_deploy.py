"""The deployment files stay in step with the code: the container config loads, every package is copied."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bot.config import load_config

ROOT = Path(__file__).resolve().parents[1]


def test_the_container_config_is_valid_and_uses_the_volume() -> None:
    config = load_config(ROOT / "deploy" / "docker-config.toml", environ={})
    assert config.storage.dir == Path("/data") and config.web.port == 8080


def test_the_dockerfile_copies_every_package_the_project_installs() -> None:
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.MULTILINE))
    assert {p.rstrip("*") for p in packages} <= copied


def test_the_systemd_unit_stops_gracefully_within_its_timeout() -> None:
    unit = (ROOT / "deploy" / "imaginebot.service").read_text()
    grace = float(re.search(r"--grace (\d+)", unit).group(1))  # type: ignore[union-attr]
    timeout = float(re.search(r"TimeoutStopSec=(\d+)", unit).group(1))  # type: ignore[union-attr]
    assert "KillSignal=SIGTERM" in unit and timeout > grace
