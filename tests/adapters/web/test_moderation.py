"""Moderation on the web: refusals as messages, flagged images blurred until clicked, /audit for admins only."""

from __future__ import annotations

import asyncio
from typing import Any

from bot import messages
from bot.jobs import Origin
from tests.adapters.web.conftest import Web

# The playground has no admins; the channel's setting is made the way an operator's tool would.
OPERATOR = Origin(platform="web", server_id="local", channel_id="lounge", user_id="operator", is_admin=True)


async def _until_images(ws: Any, job_id: str) -> list[dict[str, Any]]:
    events = []
    async with asyncio.timeout(10):
        async for message in ws:
            event = message.json()
            events.append(event)
            if event["type"] == "images" and event["job_id"] == job_id:
                return events
    raise AssertionError("no images came")


async def test_a_flagged_job_carries_the_flag_everywhere_its_images_are_shown(web: Web) -> None:
    await web.app.service.set_settings(OPERATOR, {"nsfw": "allow"}, scope="channel")
    async with web.client.ws_connect("/ws/lounge") as ws:
        job_id = await web.submit("a nude figure study --n 1", channel="lounge")
        events = await _until_images(ws, job_id)
    assert all(e["job"]["flagged"] for e in events if e["type"] in ("card", "images"))
    [card] = (await (await web.get("/api/channels/lounge/cards")).json())["cards"]
    assert card["job"]["flagged"] and card["images"]
    gallery = await (await web.get("/api/gallery/web/lounge")).json()
    assert gallery["items"][0]["job"]["flagged"]
    clean = await web.submit("a lighthouse --n 1", channel="lounge")
    await web.finished(clean)
    cards = (await (await web.get("/api/channels/lounge/cards")).json())["cards"]
    assert {c["job"]["prompt"]: c["job"]["flagged"] for c in cards} == {
        "a nude figure study": True, "a lighthouse": False,
    }


async def test_the_pages_blur_flagged_images_until_clicked(web: Web) -> None:
    css = await (await web.get("/static/style.css")).text()
    assert ".flagged img, img.flagged { filter: blur(" in css
    app_js = await (await web.get("/static/app.js")).text()
    assert "Boolean(job.flagged) && !state.revealed.has(job.id)" in app_js
    assert 'class: hidden ? "flagged" : ""' in app_js and "hidden ? reveal(job) : view(image.url)" in app_js
    gallery_js = await (await web.get("/static/gallery.js")).text()
    assert 'job.flagged ? "thumb flagged" : "thumb"' in gallery_js
    assert 'button.classList.contains("flagged") ? button.classList.remove("flagged") : detail(item)' in gallery_js


async def test_an_nsfw_prompt_in_a_closed_channel_is_refused_with_the_rule_and_a_rewrite(web: Web) -> None:
    response = await web.post("/api/channels/general/say", {"text": "a nude figure study"}, user="alice")
    body = await response.json()
    assert response.status == 400
    assert '"nude" is adult or graphic content' in body["error"] and 'Try: "a figure study"' in body["error"]
    assert (await (await web.get("/api/channels/general/cards")).json())["cards"] == []


async def test_audit_answers_that_only_admins_may_read_it(web: Web) -> None:
    response = await web.post("/api/channels/general/say", {"text": "/audit"}, user="alice")
    assert response.status == 403 and (await response.json())["error"] == messages.AUDIT_ADMIN_ONLY
    help_items = (await web.say("/help"))["items"]
    assert any(i["title"] == "/audit" for i in help_items)
    assert any(i["title"] == "--override" for i in help_items)
