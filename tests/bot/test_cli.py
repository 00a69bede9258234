"""The imaginebot command as a user runs it: generate, providers, run with a graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bot import images as imaging

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def _config(tmp_path: Path, delay: float = 0.1, extra: str = "") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\ndir = "{tmp_path / "data"}"\n'
        f'[providers.sketch]\ntype = "sketch"\ndelay = {delay}\nsize = 128\n' + extra
    )
    return path


def test_generate_writes_four_images_and_a_grid_with_their_parameters(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = _cli("generate", "a lighthouse at dusk --ar 16:9 --n 4", "--out", str(out),
                  "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    paths = [Path(line) for line in result.stdout.split()]
    assert len(paths) == 5 and all(p.is_file() and p.parent == out for p in paths)
    grid, *singles = paths
    assert "grid" in grid.name
    seeds = []
    for path in singles:
        params = imaging.read_parameters(path.read_bytes())
        assert params["prompt"] == "a lighthouse at dusk" and params["aspect"] == "16:9"
        assert params["provider"] == "sketch" and params["model"]
        seeds.append(params["seed"])
        info = imaging.image_info(path.read_bytes())
        assert info.width > info.height
    assert imaging.read_parameters(grid.read_bytes())["seeds"] == ",".join(seeds)
    assert "100 %" in result.stderr or "Done" in result.stderr


def test_generate_with_no_config_uses_the_embedded_defaults(tmp_path: Path) -> None:
    result = _cli("generate", "a small test --n 1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [path] = [Path(line) for line in result.stdout.split()]
    assert (tmp_path / path).is_file() and (tmp_path / "imaginebot-data" / "imaginebot.db").is_file()


def test_generate_explains_a_bad_flag_and_exits_nonzero(tmp_path: Path) -> None:
    result = _cli("generate", "a cat --ar wide", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert result.returncode == 1
    assert "--ar" in result.stderr and "Traceback" not in result.stderr


def test_a_config_error_names_the_key_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[limits]\nper_user_per_minit = 3\n")
    result = _cli("providers", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert "limits.per_user_per_minit: unknown key" in result.stderr and "Traceback" not in result.stderr


def test_providers_lists_capabilities_and_health(tmp_path: Path) -> None:
    result = _cli("providers", "--config", str(_config(tmp_path)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sketch (default)" in result.stdout and "ok" in result.stdout
    assert "variation" in result.stdout and "no model" in result.stdout


def test_run_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    config = _config(tmp_path, delay=30, extra="[web]\nenabled = false\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config), "--grace", "0.5"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        deadline = time.monotonic() + 30
        assert proc.stderr is not None
        seen = ""
        while "is running" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "is running" in seen
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopping" in err and "Traceback" not in err


async def test_audit_prints_a_servers_moderation_log_newest_first_for_operators(tmp_path: Path) -> None:
    import asyncio

    from bot.moderation import AuditAction, AuditEntry
    from storage.sqlite import SqliteStorage

    config = _config(tmp_path)
    missing = await asyncio.to_thread(_cli, "audit", "--server", "g1", "--config", str(config), cwd=tmp_path)
    assert missing.returncode == 1 and "no database" in missing.stderr
    store = SqliteStorage(tmp_path / "data" / "imaginebot.db")
    await store.open()
    for n, (user, action) in enumerate([("ann", AuditAction.REFUSED), ("root", AuditAction.OVERRIDDEN),
                                        ("bob", AuditAction.REFUSED)]):
        await store.record_audit(AuditEntry(
            at=1_700_000_000.0 + n, platform="discord", server_id="g1", channel_id="art", user_id=user,
            user_name=user.title(), action=action, rule="blocked_word", term="gore", prompt=f"a gore scene {n}",
            job_id="j1" if action is AuditAction.OVERRIDDEN else None,
        ))
    await store.close()
    result = await asyncio.to_thread(
        _cli, "audit", "--server", "g1", "--limit", "2", "--config", str(config), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == '2023-11-14 22:13:22 UTC  refused · blocked word "gore" · Bob (bob) · #art'
    assert lines[1].strip() == "a gore scene 2"
    assert "overridden" in lines[2] and "job j1" in lines[2] and len(lines) == 4
    cursor = result.stderr.split("--cursor ")[1].strip()
    rest = await asyncio.to_thread(
        _cli, "audit", "--server", "g1", "--cursor", cursor, "--config", str(config), cwd=tmp_path
    )
    assert "Ann (ann)" in rest.stdout and "more:" not in rest.stderr
    only_ann = await asyncio.to_thread(
        _cli, "audit", "--server", "g1", "--user", "ann", "--config", str(config), cwd=tmp_path
    )
    assert only_ann.stdout.count("refused") == 1 and "Ann" in only_ann.stdout
    other = await asyncio.to_thread(
        _cli, "audit", "--server", "g1", "--platform", "slack", "--config", str(config), cwd=tmp_path
    )
    assert other.stdout.strip() == "The moderation log is empty."
