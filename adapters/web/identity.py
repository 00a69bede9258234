"""Who is asking on the web, and which playground channel: validated once, at the edge.

The playground has no accounts. A name kept in a cookie identifies the user, which is enough to
try limits and ownership; it is not authentication, so nobody is a server admin on the web.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

from aiohttp import web

from adapters.web import texts
from bot.errors import InvalidRequest
from bot.jobs import Origin

NAME_COOKIE = "imaginebot_name"
SERVER_ID = "local"
PLATFORM = "web"
DEFAULT_CHANNEL = "general"
CHANNEL_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NAME_PUNCTUATION = frozenset(" ._-")
COOKIE_MAX_AGE = 365 * 24 * 3600


def channel_name(raw: str | None) -> str:
    """A valid playground channel name, or InvalidRequest."""
    if raw is None or not CHANNEL_RE.fullmatch(raw):
        raise InvalidRequest(texts.BAD_CHANNEL)
    return raw


def clean_name(raw: object) -> str:
    """A valid display name (trimmed), or InvalidRequest."""
    if not isinstance(raw, str):
        raise InvalidRequest(texts.BAD_NAME)
    name = " ".join(raw.split())
    if not 1 <= len(name) <= 32 or not all(c.isalnum() or c in _NAME_PUNCTUATION for c in name):
        raise InvalidRequest(texts.BAD_NAME)
    return name


def name_of(request: web.Request) -> str | None:
    """The name in the request's cookie, if it is a valid one."""
    raw = request.cookies.get(NAME_COOKIE)
    if raw is None:
        return None
    try:
        return clean_name(unquote(raw))
    except InvalidRequest:
        return None


def set_name_cookie(response: web.StreamResponse, name: str, *, secure: bool) -> None:
    # HttpOnly: page scripts never need it (the API says who you are); Strict: no cross-site use.
    response.set_cookie(
        NAME_COOKIE, quote(name, safe=""), max_age=COOKIE_MAX_AGE, path="/", httponly=True,
        samesite="Strict", secure=secure,
    )


def origin_for(request: web.Request, channel: str) -> Origin:
    """The Origin of a playground request in ``channel``; InvalidRequest without a name."""
    name = name_of(request)
    if name is None:
        raise InvalidRequest(texts.NAME_NEEDED)
    channel = channel_name(channel)
    return Origin(platform=PLATFORM, server_id=SERVER_ID, channel_id=channel, user_id=name, user_name=name)
