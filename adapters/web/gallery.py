"""Channel galleries: ``/c/<channel>`` for playground channels, signed links for chat channels.

``/c/<platform>/<channel_id>?exp=...&sig=...`` opens a Discord or Slack channel's gallery only
with a valid, unexpired signature for exactly that channel (403 otherwise). The page is static;
its script reads the same query and passes it to ``/api/gallery/...``, which checks it again.
"""

from __future__ import annotations

import calendar
import re
from datetime import date
from typing import Any

from aiohttp import web

from adapters.web import texts
from adapters.web.identity import CHANNEL_RE, PLATFORM
from adapters.web.state import state_of
from adapters.web.static import message_page, page_response
from adapters.web.views import gallery_item_json
from bot.errors import InvalidRequest, NotAllowed, NotFound
from bot.links import CHANNEL_ID_RE, PLATFORM_RE

SECONDS_PER_DAY = 86_400
MAX_PAGE = 60
DEFAULT_PAGE = 24
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def setup(app: web.Application) -> None:
    app.router.add_get("/c/{channel}", web_gallery_page)
    app.router.add_get("/c/{platform}/{channel_id}", chat_gallery_page)
    app.router.add_get("/api/gallery/{platform}/{channel_id}", gallery_api)


def _channel(request: web.Request, platform: str, channel_id: str) -> tuple[str, str]:
    """The (platform, channel) a request may see; NotFound or NotAllowed otherwise."""
    if platform == PLATFORM:
        if not CHANNEL_RE.fullmatch(channel_id):
            raise NotFound(texts.NOT_FOUND)
        return platform, channel_id
    if not PLATFORM_RE.fullmatch(platform) or not CHANNEL_ID_RE.fullmatch(channel_id):
        raise NotFound(texts.NOT_FOUND)
    state = state_of(request)
    exp, sig = request.query.get("exp"), request.query.get("sig")
    if not state.links.verify(platform, channel_id, exp, sig, now=state.app.clock.now()):
        raise NotAllowed(texts.LINK_INVALID)
    return platform, channel_id


async def web_gallery_page(request: web.Request) -> web.StreamResponse:
    return _page(request, PLATFORM, request.match_info["channel"])


async def chat_gallery_page(request: web.Request) -> web.StreamResponse:
    return _page(request, request.match_info["platform"], request.match_info["channel_id"])


def _page(request: web.Request, platform: str, channel_id: str) -> web.StreamResponse:
    try:
        _channel(request, platform, channel_id)
    except NotAllowed as exc:
        return message_page("Link not valid", exc.message, status=403)
    except NotFound as exc:
        return message_page("Not found", exc.message, status=404)
    return page_response(request, "gallery.html")


async def gallery_api(request: web.Request) -> web.Response:
    platform, channel = _channel(request, request.match_info["platform"], request.match_info["channel_id"])
    state = state_of(request)
    page = await state.app.service.gallery(platform, channel, **gallery_filters(request.query))
    return web.json_response({
        "platform": platform,
        "channel": channel,
        "items": [gallery_item_json(item) for item in page.items],
        "next_cursor": page.next_cursor,
    })


def gallery_filters(query: Any) -> dict[str, Any]:
    """Storage filters from the gallery's query string; friendly InvalidRequest for bad values."""
    filters: dict[str, Any] = {"limit": _limit(query.get("limit"))}
    for key, name in (("user", "user_id"), ("provider", "provider"), ("q", "search"), ("cursor", "cursor")):
        value = (query.get(key) or "").strip()
        if value:
            if len(value) > 200:
                raise InvalidRequest(texts.bad_filter(key, "at most 200 characters"))
            filters[name] = value
    since = _day(query.get("since"), "since")
    until = _day(query.get("until"), "until")
    if since is not None:
        filters["since"] = float(since)
    if until is not None:
        # The last day is included: the store's ``until`` is exclusive.
        filters["until"] = float(until + SECONDS_PER_DAY)
    return filters


def _limit(raw: str | None) -> int:
    if not raw:
        return DEFAULT_PAGE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise InvalidRequest(texts.bad_filter("limit", f"a number from 1 to {MAX_PAGE}"))
    return int(raw)


def _day(raw: str | None, name: str) -> int | None:
    """Seconds since the epoch at 00:00 UTC of a ``YYYY-MM-DD`` day."""
    if not raw:
        return None
    try:
        if not _DATE_RE.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        raise InvalidRequest(texts.bad_filter(name, "a date like 2024-05-31")) from None
    return calendar.timegm(day.timetuple())
