"""The fake's REST API under ``/api/v10``: routes, recording, rate limits, spec checks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from aiohttp import web

from tests.fakes.discord import handlers
from tests.fakes.discord.ratelimit import too_many_requests_body
from tests.fakes.discord.storms import first_match
from tests.fakes.discord.wire import Body, RouteSpec, read_body, respond

if TYPE_CHECKING:
    from tests.fakes.discord.server import FakeDiscord

API_PREFIX = "/api/v10"

ROUTES = tuple(RouteSpec.of(m, t, h) for m, t, h in (
    ("GET", "/users/@me", "get_me"),
    ("GET", "/oauth2/applications/@me", "get_application"),
    ("GET", "/gateway/bot", "get_gateway_bot"),
    ("PUT", "/applications/{application_id}/commands", "put_commands"),
    ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "put_commands"),
    ("POST", "/interactions/{interaction_id}/{interaction_token}/callback", "interaction_callback"),
    ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "get_original"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "edit_original"),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "delete_original"),
    ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "edit_followup"),
    ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "delete_followup"),
    ("POST", "/webhooks/{webhook_id}/{webhook_token}", "post_followup"),
    ("POST", "/channels/{channel_id}/messages", "post_message"),
    ("GET", "/channels/{channel_id}/messages/{message_id}", "get_message"),
    ("PATCH", "/channels/{channel_id}/messages/{message_id}", "edit_message"),
    ("DELETE", "/channels/{channel_id}/messages/{message_id}", "delete_message"),
    ("POST", "/channels/{channel_id}/messages/{message_id}/threads", "start_thread"),
    ("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/{emoji_name}/@me", "add_reaction"),
    ("GET", "/channels/{channel_id}", "get_channel"),
    ("POST", "/users/@me/channels", "create_dm"),
))


@dataclass
class Call:
    """One request as the fake received it, and how it answered."""

    method: str
    route: str
    params: dict[str, str]
    query: dict[str, str]
    body: Body
    at: float
    status: int = 0
    answer: Any = None
    authorization: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Rest:
    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len(API_PREFIX):]
        route, params = _match(request.method, path)
        if route is None:
            return respond(404, {"code": 0, "message": "404: Not Found"})
        params = {k: unquote(v) for k, v in params.items()}
        body = await read_body(request)
        call = Call(request.method, route.key, params, dict(request.query), body, time.monotonic(),
                    authorization=_redacted(request.headers.get("Authorization", "")))
        self.fake.calls.append(call)
        if not route.template.startswith(("/webhooks", "/interactions")) and not call.authorization:
            return self._finish(call, request.path, 401, {"code": 0, "message": "401: Unauthorized"}, {})
        self.fake.spec.request(request.method, request.path, dict(request.query), body.json)
        storm = first_match(self.fake.storms, route.key)
        if storm is not None:
            call.status = storm.status
            return storm.answer()
        verdict = self.fake.limiter.check(route.key, _resource(params))
        if not verdict.allowed:
            call.status = 429
            return web.Response(status=429, body=too_many_requests_body(verdict.retry_after),
                                headers={**verdict.headers, "Via": "1.1 google", "Content-Type": "application/json"})
        handler = getattr(handlers, route.handler)
        status, answer = await handler(self.fake, call)
        return self._finish(call, request.path, status, answer, verdict.headers)

    def _finish(self, call: Call, path: str, status: int, answer: Any, headers: dict[str, str]) -> web.Response:
        call.status, call.answer = status, answer
        if status != 204:
            self.fake.spec.response(call.method, path, call.query, status, answer)
        return respond(status, answer, headers)


def _match(method: str, path: str) -> tuple[RouteSpec | None, dict[str, str]]:
    for route in ROUTES:
        if route.method == method:
            match = route.regex.match(path)
            if match:
                return route, match.groupdict()
    return None, {}


def _resource(params: dict[str, str]) -> str:
    if "channel_id" in params:
        return "channel:" + params["channel_id"]
    if "webhook_token" in params:
        return "webhook:" + params["webhook_token"][-12:]
    return "-"


def _redacted(value: str) -> str:
    # The fake never keeps the token itself: tests only need to know which kind was used.
    return value.split(" ", 1)[0] if value else ""
