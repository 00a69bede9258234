"""The playground: a name, a prompt, and a card that updates live over the WebSocket."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from adapters.web.identity import NAME_COOKIE
from tests.adapters.web.conftest import Web, WebFactory


async def _events_until_images(ws: aiohttp.ClientWebSocketResponse, job_id: str) -> list[dict[str, Any]]:
    events = []
    async with asyncio.timeout(10):
        async for message in ws:
            assert message.type is WSMsgType.TEXT
            event = message.json()
            events.append(event)
            if event["type"] == "images" and event["job_id"] == job_id:
                return events
    raise AssertionError("the socket closed before the images came")


async def test_a_prompt_becomes_a_live_card_that_ends_with_four_images(make_web: WebFactory) -> None:
    # A second of work with four previews gives the 0.25 s web throttle several frames to send.
    web = await make_web(sketch={"delay": 1.0, "preview_frames": 4})
    async with web.client.ws_connect("/ws/general") as ws:
        job_id = await web.submit("a lighthouse at dusk --n 4")
        events = await _events_until_images(ws, job_id)
    cards = [e for e in events if e["type"] == "card" and e["job"]["id"] == job_id]
    statuses = [c["status"] for c in cards]
    assert statuses[0] == "queued" and cards[0]["text"].startswith("Queued")
    running = [c for c in cards if c["status"] == "running"]
    assert running and any(0 < (c["fraction"] or 0) < 1 for c in running), "a progress bar between 0 and 100 %"
    assert any(c["preview"] and c["preview"].startswith("data:image/") for c in running), "live previews"
    final = cards[-1]
    assert final["status"] == "succeeded" and final["final"] and final["fraction"] == 1.0
    assert final["text"].startswith("Done")
    images = events[-1]["images"]
    assert [i["index"] for i in images] == [0, 1, 2, 3]
    assert images[0]["url"] == f"/img/{images[0]['sha256']}"
    served = await web.get(images[0]["url"])
    assert served.status == 200 and served.content_type == "image/png"


async def test_a_channel_opened_later_shows_its_cards_with_images(web: Web) -> None:
    job_id = await web.submit("a quiet harbour --n 2", channel="harbour")
    await web.finished(job_id)
    response = await web.get("/api/channels/harbour/cards")
    body = await response.json()
    [card] = body["cards"]
    assert card["job"]["id"] == job_id and card["status"] == "succeeded"
    assert len(card["images"]) == 2 and card["job"]["user"] == "alice"
    channels = await (await web.get("/api/channels")).json()
    assert "harbour" in channels["channels"] and "general" in channels["channels"]


async def test_a_running_job_shows_its_latest_frame_to_a_page_opened_mid_job(make_web: WebFactory) -> None:
    web = await make_web(sketch={"delay": 2.0, "preview_frames": 20})
    job_id = await web.submit("a slow sunrise --n 1")
    async with asyncio.timeout(5):
        while True:
            body = await (await web.get("/api/channels/general/cards")).json()
            card = body["cards"][0]
            if card["status"] == "running" and card["fraction"]:
                break
            await asyncio.sleep(0.05)
    assert card["job"]["id"] == job_id and card["text"].startswith("Drawing")
    await web.act(job_id, "cancel")


async def test_the_name_lives_in_a_strict_http_only_cookie(web: Web) -> None:
    response = await web.post("/api/me", {"name": "  Ada  Lovelace "})
    assert response.status == 200 and (await response.json())["name"] == "Ada Lovelace"
    cookie = response.cookies[NAME_COOKIE]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"
    me = await (await web.get("/api/me", user="Ada%20Lovelace")).json()
    assert me["name"] == "Ada Lovelace" and me["admin"] is False and "sketch" in me["providers"]


async def test_a_bad_name_is_refused_kindly(web: Web) -> None:
    for name in ("", "x" * 33, "<script>", 42):
        response = await web.post("/api/me", {"name": name})
        assert response.status == 400
        assert "name" in (await response.json())["error"]


async def test_without_a_name_nothing_is_queued(web: Web) -> None:
    response = await web.post("/api/channels/general/say", {"text": "a cat"})
    assert response.status == 400
    assert "Pick a name" in (await response.json())["error"]
    assert (await web.app.service.history("web", "general")).items == []


async def test_a_bad_flag_is_a_friendly_error(web: Web) -> None:
    response = await web.post("/api/channels/general/say", {"text": "/imagine a cat --ar sideways"}, user="alice")
    body = await response.json()
    assert response.status == 400 and "--ar" in body["error"] and body["retry_at"] is None


async def test_channel_names_are_checked(web: Web) -> None:
    for channel in ("bad%20name", "x" * 33, "%2e%2e"):
        response = await web.post(f"/api/channels/{channel}/say", {"text": "a cat"}, user="alice")
        assert response.status in (400, 404)
        assert (await web.get(f"/api/channels/{channel}/cards")).status in (400, 404)


async def test_going_too_fast_says_when_to_try_again(make_web: WebFactory) -> None:
    web = await make_web(limits={"per_user_per_minute": 1.0, "burst": 1})
    await web.submit("a cat --n 1")
    response = await web.post("/api/channels/general/say", {"text": "a dog --n 1"}, user="alice")
    body = await response.json()
    assert response.status == 429
    assert body["retry_at"] is not None and body["retry_at"] > web.app.clock.now()
    assert int(response.headers["Retry-After"]) >= 1


async def test_posts_from_other_sites_and_forms_are_refused(web: Web) -> None:
    evil = await web.post("/api/channels/general/say", {"text": "a cat"}, user="alice",
                          headers={"Origin": "https://evil.example"})
    assert evil.status == 403
    form = await web.client.post("/api/channels/general/say", data={"text": "a cat"},
                                 headers={"Cookie": "imaginebot_name=alice"})
    assert form.status == 400
    assert (await web.app.service.history("web", "general")).items == []


async def test_a_websocket_from_another_site_is_refused(web: Web) -> None:
    try:
        async with web.client.ws_connect("/ws/general", headers={"Origin": "https://evil.example"}):
            raise AssertionError("the socket opened")
    except aiohttp.WSServerHandshakeError as exc:
        assert exc.status == 403
    same = await web.client.ws_connect("/ws/general", headers={"Origin": str(web.client.make_url("/"))[:-1]})
    await same.close()
