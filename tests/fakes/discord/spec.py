"""Checking every request the client sends, and every response the fake returns, against the
official OpenAPI spec (``../shared/specs/openapi.json``), with openapi-core.

Known, harmless differences between what discord.py sends and what the spec says are listed in
:data:`ALLOWLIST`, each with the reason; anything else is a violation the tests fail on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from openapi_core import Config as OpenAPIConfig
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

REPO = Path(__file__).resolve().parents[3]
SPEC_PATH = REPO / ".." / "shared" / "specs" / "openapi.json"
HOST = "https://discord.com"

#: (route, a fragment of the error text) pairs that are known library deviations.
ALLOWLIST: tuple[tuple[str, str, str], ...] = (
    # discord.py numbers new uploads in ``attachments[].id`` with integers (0, 1 ...), as the docs'
    # own examples do; the spec types every id as a snowflake string. Discord accepts both.
    ("*", "attachments", "is not of type 'string'"),
)


@cache
def _openapi() -> OpenAPI:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    # The spec itself is not re-validated (slow, and it is the official file).
    return OpenAPI.from_dict(spec, config=OpenAPIConfig(spec_validator_cls=None))


@dataclass
class Violation:
    kind: str  # "request" or "response"
    method: str
    path: str
    detail: str


@dataclass
class SpecChecker:
    """Validates traffic; keeps the violations it found (allowlisted ones are counted apart)."""

    violations: list[Violation] = field(default_factory=list)
    allowed: int = 0
    checked: int = 0

    def request(self, method: str, path: str, query: dict[str, str], body: Any | None) -> None:
        data = None if body is None else json.dumps(body).encode()
        req = MockRequest(HOST, method.lower(), path, args=query, headers={"Authorization": "Bot x"},
                          data=data, content_type="application/json")
        self._run("request", method, path, lambda: _openapi().validate_request(req))

    def response(self, method: str, path: str, query: dict[str, str], status: int, body: Any) -> None:
        req = MockRequest(HOST, method.lower(), path, args=query, headers={"Authorization": "Bot x"})
        data = b"" if body is None else json.dumps(body).encode()
        resp = MockResponse(data, status_code=status, content_type="application/json")
        self._run("response", method, path, lambda: _openapi().validate_response(req, resp))

    def _run(self, kind: str, method: str, path: str, check: Any) -> None:
        self.checked += 1
        try:
            check()
        except Exception as exc:  # openapi-core raises a family of errors; each is a finding here
            detail = _describe(exc)
            if any(frag in detail and extra in detail for _, frag, extra in ALLOWLIST):
                self.allowed += 1
                return
            self.violations.append(Violation(kind, method, path, detail))


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__
    for err in getattr(cause, "schema_errors", None) or []:
        path = "/".join(str(p) for p in getattr(err, "absolute_path", []))
        parts.append(f"{path}: {getattr(err, 'message', err)}")
    if cause is not None and not getattr(cause, "schema_errors", None):
        parts.append(f"{type(cause).__name__}: {cause}")
    return " | ".join(parts)
