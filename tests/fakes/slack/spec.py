"""Checking the bot's Web API calls, and the fake's answers, against Slack's spec.

The spec (``../shared/specs/slack/slack_web_openapi_v2.json``) is Swagger 2.0, which openapi-core
cannot read, so this is a small checker of our own (research/platforms.md §7): take the operation
of ``/{method}``; every ``required`` parameter must be there (the Bearer header counts as
``token``); booleans and numbers must parse; a parameter the operation does not declare is a
violation. Answers are checked with jsonschema (Draft 4) against ``responses.200.schema`` (or
``default`` for errors), resolving ``#/definitions/...`` inside the document. Methods the spec
lacks use :mod:`.contracts`.

Known, harmless differences are listed in :data:`ALLOWED`, each with its reason.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.fakes.slack.contracts import OPERATIONS

REPO = Path(__file__).resolve().parents[3]
SPEC_PATH = REPO / ".." / "shared" / "specs" / "slack" / "slack_web_openapi_v2.json"
_URI = "urn:slack-web-openapi-v2"

#: Parameters clients add that the spec does not list: bolt's per-request client adds ``team_id``
#: to every call (research/platforms.md §7).
IGNORED_PARAMS = frozenset({"team_id"})

#: (method or "*", a fragment of the finding, why it is fine).
ALLOWED: tuple[tuple[str, str, str], ...] = (
    # The spec's error enums say "rate_limited"; the API (and slack_sdk) use "ratelimited".
    ("*", "'ratelimited' is not one of", "the spec's enum predates the real error code"),
)


@dataclass
class Violation:
    kind: str  # "request", "response" or "blocks"
    method: str
    detail: str


@functools.cache
def document() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        raise FileNotFoundError(f"the Slack spec is missing: {SPEC_PATH} (shared/ sits beside the repo)")
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


@functools.cache
def _registry() -> Registry[Any]:
    resource: Resource[Any] = Resource.from_contents(document(), default_specification=DRAFT4)
    registry: Registry[Any] = Registry().with_resource(_URI, resource)
    return registry


def operation(method: str) -> tuple[str, dict[str, Any]] | None:
    """("spec" or "contract", the operation) for a method, or None when neither has it."""
    if method in OPERATIONS:
        return "contract", OPERATIONS[method]
    item = document()["paths"].get("/" + method)
    if item is None:
        return None
    # The spec's verbs are wrong for some methods (views.open is GET there); slack_sdk POSTs.
    return "spec", next(iter(item.values()))


@dataclass
class SpecChecker:
    """Validates traffic; keeps what it found (allowlisted findings are only counted)."""

    violations: list[Violation] = field(default_factory=list)
    allowed: int = 0
    checked: int = 0

    def request(self, method: str, params: Mapping[str, Any], *, bearer: bool, as_json: bool) -> None:
        self.checked += 1
        found = operation(method)
        if found is None:
            self._add("request", method, "the method is neither in the spec nor in the contracts")
            return
        declared = {p["name"]: p for p in found[1].get("parameters", [])}
        for name, param in declared.items():
            if param.get("required") and name not in params and not (name == "token" and bearer):
                self._add("request", method, f"missing required parameter {name!r}")
        for name, value in params.items():
            if name in IGNORED_PARAMS:
                continue
            param = declared.get(name)
            if param is None:
                self._add("request", method, f"unknown parameter {name!r}")
            elif not _fits(value, param.get("type", "string"), as_json):
                self._add("request", method, f"{name!r} is not a {param.get('type')}: {value!r:.60}")

    def response(self, method: str, body: Any) -> None:
        found = operation(method)
        if found is None:
            return
        self.checked += 1
        ok = isinstance(body, dict) and body.get("ok") is True
        responses = found[1]["responses"]
        schema = (responses.get("200") if ok else responses.get("default")) or {}
        if "schema" not in schema:
            return
        if found[0] == "spec":
            verb = next(iter(document()["paths"]["/" + method]))
            pointer = f"#/paths/~1{method}/{verb}/responses/{'200' if ok else 'default'}/schema"
            validator = Draft4Validator({"$ref": _URI + pointer}, registry=_registry())
        else:
            validator = Draft4Validator(schema["schema"])
        for error in validator.iter_errors(body):
            where = "/".join(str(p) for p in error.absolute_path)
            self._add("response", method, f"{where}: {error.message}")

    def blocks(self, method: str, problems: list[str]) -> None:
        for problem in problems:
            self._add("blocks", method, problem)

    def _add(self, kind: str, method: str, detail: str) -> None:
        if any(m in ("*", method) and fragment in detail for m, fragment, _ in ALLOWED):
            self.allowed += 1
            return
        self.violations.append(Violation(kind, method, detail))


def _fits(value: Any, kind: str, as_json: bool) -> bool:
    if kind == "boolean":
        return isinstance(value, bool) if as_json and not isinstance(value, str) else \
            str(value).lower() in ("true", "false", "1", "0")
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or str(value).lstrip("-").isdigit()
    if kind == "number":
        try:
            float(value)
        except (TypeError, ValueError):
            return False
        return not isinstance(value, bool)
    # A string parameter: form bodies carry strings; JSON bodies may carry the structure itself
    # (blocks, view, attachments), which the API accepts.
    return isinstance(value, str) or (as_json and isinstance(value, list | dict))
