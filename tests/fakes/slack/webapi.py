"""The fake's Web API at ``/api/{method}``: reading JSON, form and query parameters, checking the
token, recording, spec checks, rate limits and scripted faults, then the method itself.

Slack answers errors with HTTP 200 and ``{"ok": false, "error": ...}``, except rate limits: HTTP
429 with ``Retry-After``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from aiohttp import web

from tests.fakes.slack import methods

if TYPE_CHECKING:
    from tests.fakes.slack.server import FakeSlack

Answer = dict[str, Any]
Method = Callable[["FakeSlack", "Call"], Awaitable[Answer]]


@dataclass
class Call:
    """One Web API request as the fake received it, and its answer."""

    method: str
    params: dict[str, Any]
    content_type: str
    #: "ok", "missing" or "wrong": which token came (the token itself is never kept).
    token: str
    at: float
    raw: str = ""
    status: int = 200
    answer: Answer = field(default_factory=dict)


@dataclass
class Fault:
    """A scripted answer for the next call of a method: a status, a JSON body and headers."""

    status: int = 429
    body: Answer = field(default_factory=lambda: {"ok": False, "error": "ratelimited"})
    headers: dict[str, str] = field(default_factory=lambda: {"Retry-After": "1"})


async def handle(fake: FakeSlack, request: web.Request) -> web.Response:
    method = request.match_info["method"]
    raw = (await request.read()).decode("utf-8", "replace")
    params: dict[str, Any] = dict(request.query)
    as_json = request.content_type == "application/json"
    if as_json and raw:
        params.update(json.loads(raw))
    elif request.content_type == "application/x-www-form-urlencoded":
        params.update(parse_qsl(raw, keep_blank_values=True))
    bearer = request.headers.get("Authorization", "")
    token = bearer[7:] if bearer.startswith("Bearer ") else str(params.get("token", ""))
    call = Call(method, params, request.content_type, _token_kind(fake, method, token), time.monotonic(),
                raw=raw)
    fake.calls.append(call)
    if call.token != "ok":
        return _finish(fake, call, {"ok": False, "error": "not_authed" if not token else "invalid_auth"})
    params.pop("token", None)
    fake.spec.request(method, params, bearer=bool(bearer), as_json=as_json)
    faults = fake.faults.get(method)
    if faults:
        fault = faults.pop(0)
        call.status, call.answer = fault.status, fault.body
        return web.json_response(fault.body, status=fault.status, headers=fault.headers)
    verdict = fake.limiter.check(method, str(params.get("channel") or "") or None)
    if not verdict.allowed:
        call.status, call.answer = 429, {"ok": False, "error": "ratelimited"}
        fake.spec.response(method, call.answer)
        return web.json_response(call.answer, status=429, headers={"Retry-After": str(verdict.retry_after)})
    handler = methods.METHODS.get(method)
    answer = {"ok": False, "error": "unknown_method"} if handler is None else await handler(fake, call)
    return _finish(fake, call, answer)


def _finish(fake: FakeSlack, call: Call, answer: Answer) -> web.Response:
    call.answer = answer
    fake.spec.response(call.method, answer)
    return web.json_response(answer)


def _token_kind(fake: FakeSlack, method: str, token: str) -> str:
    wanted = fake.app_token if method == "apps.connections.open" else fake.bot_token
    if not token:
        return "missing"
    return "ok" if token == wanted else "wrong"
