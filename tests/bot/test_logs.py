"""Logs: JSON lines on request, and configured secrets masked even when a library echoes them."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.config import config_from_dict
from bot.logs import MASK, JsonFormatter, SecretMask, secrets_in

ROOT = Path(__file__).resolve().parents[2]


def test_every_configured_secret_is_collected() -> None:
    config = config_from_dict({
        "discord": {"token": "discord-token-value"},
        "slack": {"bot_token": "xoxb-slack-token", "signing_secret": "s" * 32},
        "web": {"link_secret": "link-secret-value"},
        "providers": {"sketch": {"type": "sketch"}, "o": {"type": "openai", "api_key": "sk-openai-key"}},
    }, environ={})
    assert set(secrets_in(config)) == {"discord-token-value", "xoxb-slack-token", "s" * 32, "link-secret-value",
                                       "sk-openai-key"}


def test_a_secret_in_a_message_or_traceback_is_masked() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "call failed with %s", ("Bearer sk-openai-key",), None)
    try:
        raise RuntimeError("proxy said: token sk-openai-key is bad")
    except RuntimeError:
        record.exc_info = sys.exc_info()
    SecretMask(["sk-openai-key"]).filter(record)
    text = logging.Formatter().format(record)
    assert "sk-openai-key" not in text and MASK in text and "proxy said" in text


def test_json_lines_carry_level_logger_and_message() -> None:
    record = logging.LogRecord("imaginebot", logging.WARNING, __file__, 1, "queue is %d deep", (7,), None)
    entry = json.loads(JsonFormatter().format(record))
    assert entry["level"] == "warning" and entry["logger"] == "imaginebot" and entry["message"] == "queue is 7 deep"


def test_the_cli_logs_json_when_asked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n[web]\nenabled = false\n')
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "--log-json", "run", "--config", str(config)],
        cwd=tmp_path, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stderr is not None
    first = proc.stderr.readline()
    proc.send_signal(signal.SIGTERM)
    rest = proc.communicate(timeout=30)[1]
    lines = [first, *(rest or "").splitlines()]
    logged = [json.loads(line) for line in lines if line.strip().startswith("{")]
    assert proc.returncode == 0
    assert logged and all({"time", "level", "logger", "message"} <= set(e) for e in logged)
    assert any("is running" in e["message"] for e in logged)
