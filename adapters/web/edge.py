"""The HTTP edge: security headers, friendly errors, and same-origin JSON bodies.

Every :class:`~bot.errors.UserFacingError` becomes a 4xx JSON answer ``{"error", "retry_at"}``
the page shows as it is; anything else is logged and answered with a plain apology, never a
traceback.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from adapters.web import texts
from bot.errors import (
    InvalidRequest,
    NotAllowed,
    NotFound,
    QueueFull,
    QuotaExceeded,
    RateLimited,
    StorageUnavailable,
    UserFacingError,
)

log = logging.getLogger(__name__)

#: No external sources and no inline script or style: pages load only this server's files.
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; script-src 'self'; style-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    # Signed gallery links carry their signature in the URL: never pass it on in a Referer.
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}

_STATUS: tuple[tuple[type[UserFacingError], int], ...] = (
    (NotFound, 404),
    (NotAllowed, 403),
    (RateLimited, 429),
    (QuotaExceeded, 429),
    (QueueFull, 429),
    (StorageUnavailable, 503),
)


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare`` hook: every answer (errors and WebSockets too) gets the headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def status_for(exc: UserFacingError) -> int:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return 400


def error_response(exc: UserFacingError) -> web.Response:
    status = status_for(exc)
    response = web.json_response({"error": exc.message, "retry_at": exc.retry_at}, status=status)
    if status == 429 and exc.retry_at is not None:
        response.headers["Retry-After"] = str(max(1, math.ceil(exc.retry_at - time.time())))
    return response


@web.middleware
async def friendly_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserFacingError as exc:
        return error_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("web: %s %s failed", request.method, request.path)
        return web.json_response({"error": texts.SERVER_ERROR, "retry_at": None}, status=500)


def same_origin(request: web.Request) -> bool:
    """Whether the request's Origin header (when a browser sent one) names this host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc.lower() == request.host.lower()


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object body, refusing cross-site and non-JSON posts."""
    # A cross-site page cannot send application/json without a CORS preflight, which we never
    # grant; checking Origin as well closes the gap for browsers that send it.
    if not same_origin(request):
        raise NotAllowed(texts.BAD_ORIGIN)
    if request.content_type != "application/json":
        raise InvalidRequest(texts.BAD_JSON)
    try:
        body = await request.json()
    except ValueError:
        raise InvalidRequest(texts.BAD_JSON) from None
    if not isinstance(body, dict):
        raise InvalidRequest(texts.BAD_JSON)
    return body
