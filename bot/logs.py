"""Logging setup: plain lines or JSON objects (``--log-json``), with configured secrets masked.

Secrets are kept out of log calls in the first place; the mask is a second line of defence for
text we do not control (a library that echoes a request, an exception from a proxy).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime

from pydantic import SecretStr

from bot.config import Config

MASK = "[secret]"
#: Shorter values would mask ordinary words; real tokens and keys are far longer.
MIN_SECRET_LENGTH = 8


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class SecretMask(logging.Filter):
    """Replaces every configured secret in a record's final text with ``[secret]``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        text = record.getMessage()
        masked = self._mask(text)
        if masked != text:
            record.msg, record.args = masked, None
        if record.exc_info:
            formatted = logging.Formatter().formatException(record.exc_info)
            record.exc_text = self._mask(formatted)
            record.exc_info = None
        return True

    def _mask(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


def secrets_in(config: Config) -> list[str]:
    """Every secret value the config holds (tokens, keys, signing and link secrets)."""
    found: list[str] = []
    for section in (config.discord, config.slack, config.web):
        found += [v.get_secret_value() for v in section.__dict__.values() if isinstance(v, SecretStr)]
    for provider in config.providers.values():
        key = provider.get("api_key")
        if isinstance(key, str):
            found.append(key)
    return found


def setup_logging(level: str, *, json_lines: bool, secrets: Iterable[str] = ()) -> None:
    """Configure the root logger once, writing to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(SecretMask(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(getattr(logging, level.upper()))
