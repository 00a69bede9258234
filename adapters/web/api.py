"""The playground's JSON API and its WebSocket.

* ``GET/POST /api/me``: the name kept in a cookie;
* ``GET /api/channels``: playground channels (never another platform's);
* ``GET /api/channels/{channel}/cards``: a channel's cards, newest first, keyset-paged;
* ``POST /api/channels/{channel}/say``: a line from the prompt box (``/imagine ...``, ``/queue`` ...);
* ``POST /api/jobs/{job_id}/{action}``: the card buttons (upscale, vary, reroll, cancel, delete, favourite);
* ``GET /ws/{channel}``: live card and image events for one channel.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from adapters.web import texts
from adapters.web.commands import Reply, run_command
from adapters.web.edge import json_body, same_origin
from adapters.web.identity import (
    DEFAULT_CHANNEL,
    PLATFORM,
    SERVER_ID,
    channel_name,
    clean_name,
    name_of,
    origin_for,
    set_name_cookie,
)
from adapters.web.state import WebState, state_of
from adapters.web.surface import Subscription
from adapters.web.views import job_json, stored_card_json
from bot.errors import InvalidRequest, NotAllowed, NotFound
from bot.jobs import Job, Origin

log = logging.getLogger(__name__)

JOB_ID_RE = re.compile(r"[0-9a-z]{8,32}")
MAX_TEXT = 4500
#: Channels listed in the sidebar; older ones still open by name.
MAX_CHANNELS = 100
CARDS_PER_PAGE = 20


def setup(app: web.Application) -> None:
    app.router.add_get("/api/me", get_me)
    app.router.add_post("/api/me", set_me)
    app.router.add_get("/api/channels", list_channels)
    app.router.add_get("/api/channels/{channel}/cards", channel_cards)
    app.router.add_post("/api/channels/{channel}/say", say)
    app.router.add_post("/api/jobs/{job_id}/{action}", job_action)
    app.router.add_get("/ws/{channel}", socket)


# --- who and where ---------------------------------------------------------------------------
async def get_me(request: web.Request) -> web.Response:
    state = state_of(request)
    return web.json_response({
        "name": name_of(request),
        "default_channel": DEFAULT_CHANNEL,
        "providers": sorted(state.app.providers),
        "default_provider": state.app.config.routing.default,
        # Names are not authentication, so nobody administers the playground.
        "admin": False,
    })


async def set_me(request: web.Request) -> web.Response:
    body = await json_body(request)
    name = clean_name(body.get("name"))
    response = web.json_response({"name": name})
    set_name_cookie(response, name, secure=request.secure)
    return response


async def list_channels(request: web.Request) -> web.Response:
    state = state_of(request)
    # Only playground channels: a Discord or Slack channel is reachable only through a signed link.
    names = (await state.app.service.channels(PLATFORM))[:MAX_CHANNELS]
    if DEFAULT_CHANNEL not in names:
        names.append(DEFAULT_CHANNEL)
    return web.json_response({"channels": names})


async def channel_cards(request: web.Request) -> web.Response:
    state = state_of(request)
    channel = channel_name(request.match_info["channel"])
    page = await state.app.service.history(
        PLATFORM, channel, cursor=request.query.get("cursor") or None, limit=CARDS_PER_PAGE
    )
    cards = [await _card_for(state, job) for job in page.items]
    return web.json_response({"cards": cards, "next_cursor": page.next_cursor})


async def _card_for(state: WebState, job: Job) -> dict[str, Any]:
    if not job.status.finished:
        live = state.surface.live_frame(job.id)
        if live is not None:
            return live
    viewer = Origin(platform=PLATFORM, server_id=SERVER_ID, channel_id=job.origin.channel_id, user_id="")
    return stored_card_json(job, await state.app.service.job_images(job.id, viewer))


# --- the prompt box and the buttons --------------------------------------------------------------
async def say(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await json_body(request)
    origin = origin_for(request, request.match_info["channel"])
    text = body.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest(texts.EMPTY_PROMPT)
    return web.json_response(await run_command(state, origin, text[:MAX_TEXT]))


async def job_action(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await json_body(request)
    job_id = request.match_info["job_id"]
    action = request.match_info["action"]
    handler = ACTIONS.get(action)
    if handler is None or not JOB_ID_RE.fullmatch(job_id):
        raise NotFound(texts.NOT_FOUND)
    origin = origin_for(request, str(body.get("channel", "")))
    return web.json_response(await handler(state, origin, job_id, body))


def _index(body: dict[str, Any]) -> int:
    index = body.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 4:
        raise InvalidRequest(texts.BAD_INDEX)
    return index


def _jobs(*jobs: Job) -> Reply:
    return {"kind": "jobs", "jobs": [job_json(job) for job in jobs]}


async def _upscale(state: WebState, origin: Origin, job_id: str, body: dict[str, Any]) -> Reply:
    return _jobs(await state.app.service.upscale(job_id, _index(body), origin))


async def _vary(state: WebState, origin: Origin, job_id: str, body: dict[str, Any]) -> Reply:
    return _jobs(await state.app.service.vary(job_id, _index(body), origin))


async def _reroll(state: WebState, origin: Origin, job_id: str, body: dict[str, Any]) -> Reply:
    return _jobs(await state.app.service.reroll(job_id, origin))


async def _cancel(state: WebState, origin: Origin, job_id: str, body: dict[str, Any]) -> Reply:
    job = await state.app.service.cancel(job_id, origin)
    return {"kind": "note", "text": texts.cancelled(job.id)}


async def _delete(state: WebState, origin: Origin, job_id: str, body: dict[str, Any]) -> Reply:
    job = await state.app.service.delete(job_id, origin)
    event = {"type": "deleted", "job_id": job.id}
    state.surface.publish(job.origin.channel_id, f"deleted:{job.id}", event)
    return {"kind": "deleted", "job_id": job.id}


async def _favourite(state: WebState, origin: Origin, job_id: str, body: dict[str, Any]) -> Reply:
    index = _index(body)
    on = body.get("on", True)
    if not isinstance(on, bool):
        raise InvalidRequest(texts.BAD_JSON)
    await state.app.service.favourite(job_id, index, origin, on=on)
    return {"kind": "favourite", "job_id": job_id, "index": index, "on": on}


ACTIONS = {
    "upscale": _upscale,
    "vary": _vary,
    "reroll": _reroll,
    "cancel": _cancel,
    "delete": _delete,
    "favourite": _favourite,
}


# --- live updates ------------------------------------------------------------------------------
async def socket(request: web.Request) -> web.StreamResponse:
    state = state_of(request)
    channel = channel_name(request.match_info["channel"])
    # Browsers do not apply the same-origin policy to WebSockets: check Origin ourselves.
    if not same_origin(request):
        raise NotAllowed(texts.BAD_ORIGIN)
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    state.sockets.add(ws)
    subscription = state.surface.subscribe(channel)
    pump = asyncio.create_task(_pump(ws, subscription), name=f"web-ws-{channel}")
    try:
        async for message in ws:
            # The page only listens; reading keeps pings and the close handshake flowing.
            if message.type is WSMsgType.ERROR:
                break
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        state.surface.unsubscribe(subscription)
        state.sockets.discard(ws)
    return ws


async def _pump(ws: web.WebSocketResponse, subscription: Subscription) -> None:
    try:
        await _send_events(ws, subscription)
    except ConnectionError:
        pass  # the page went away; the reader sees the close and cleans up
    except Exception:
        log.exception("web: live updates of #%s stopped", subscription.channel)
        await ws.close(code=WSCloseCode.INTERNAL_ERROR)


async def _send_events(ws: web.WebSocketResponse, subscription: Subscription) -> None:
    while not ws.closed:
        batch = await subscription.next_batch()
        if subscription.overflowed:
            # Too far behind to catch up event by event: the page reconnects and reloads the channel.
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER)
            return
        for event in batch:
            await ws.send_json(event)
