"""The chat commands typed in the prompt box, answered as bot messages in the channel."""

from __future__ import annotations

import asyncio

from tests.adapters.web.conftest import Web, WebFactory


async def test_plain_text_and_imagine_both_queue_a_prompt(web: Web) -> None:
    plain = await web.say("a fox in the snow --n 1")
    slash = await web.say("/imagine a fox in the snow --n 1")
    assert plain["jobs"][0]["prompt"] == slash["jobs"][0]["prompt"] == "a fox in the snow"
    perms = await web.say("/imagine a {red, blue} fox --n 1")
    assert [j["prompt"] for j in perms["jobs"]] == ["a red fox", "a blue fox"]


async def test_imagine_without_a_prompt_says_how(web: Web) -> None:
    response = await web.post("/api/channels/general/say", {"text": "/imagine   "}, user="alice")
    assert response.status == 400 and "/imagine a lighthouse" in (await response.json())["error"]


async def test_gallery_hands_out_this_channels_gallery(web: Web) -> None:
    reply = await web.say("/gallery", channel="harbour")
    assert reply["kind"] == "link" and reply["url"] == "/c/harbour"
    assert (await web.get(reply["url"])).status == 200


async def test_history_lists_the_latest_prompts(web: Web) -> None:
    job_id = await web.submit("a lighthouse at dusk --n 1")
    await web.finished(job_id)
    reply = await web.say("/history")
    assert reply["kind"] == "list" and reply["items"][0]["title"] == "a lighthouse at dusk"
    assert job_id in reply["items"][0]["detail"] and "alice" in reply["items"][0]["detail"]
    empty = await web.say("/history", channel="quiet")
    assert empty["items"] == [] and empty["empty"]


async def test_queue_and_cancel_work_on_your_own_jobs(make_web: WebFactory) -> None:
    web = await make_web(sketch={"delay": 5.0, "concurrency": 1})
    first = await web.submit("a slow one --n 1")
    second = await web.submit("another slow one --n 1")
    queue = await web.say("/queue")
    details = " ".join(item["detail"] for item in queue["items"])
    assert first in details and second in details and "#1 in line" in details
    assert (await web.say("/queue", user="bob"))["items"] == []
    async with asyncio.timeout(5):  # the card shows what the throttle has sent so far
        while True:
            cards = (await (await web.get("/api/channels/general/cards")).json())["cards"]
            waiting = next(c for c in cards if c["job"]["id"] == second)
            if waiting["position"] is not None:
                break
            await asyncio.sleep(0.02)
    assert waiting["status"] == "queued" and waiting["position"] == 1 and waiting["eta_seconds"] > 0
    assert waiting["text"].startswith("Queued: #1 in line, about")
    cancelled = await web.say("/cancel")
    assert cancelled["kind"] == "note" and second in cancelled["text"], "the newest job goes first"
    refused = await web.post("/api/channels/general/say", {"text": f"/cancel {first}"}, user="bob")
    assert refused.status == 403
    assert first in (await web.say(f"/cancel {first}"))["text"]
    nothing = await web.post("/api/channels/general/say", {"text": "/cancel"}, user="alice")
    assert nothing.status == 400 and "nothing" in (await nothing.json())["error"]


async def test_styles_lists_the_configured_presets(make_web: WebFactory) -> None:
    web = await make_web(styles={"noir": {"prompt": "{prompt}, film noir", "description": "black and white"}})
    reply = await web.say("/styles")
    assert {"title": "noir", "detail": "black and white"} in reply["items"]


async def test_settings_show_and_change_your_defaults(web: Web) -> None:
    shown = await web.say("/settings")
    assert {"title": "count", "detail": "default"} in shown["items"]
    saved = await web.say("/settings count=2 aspect=16:9")
    assert {"title": "count", "detail": "2"} in saved["items"]
    assert {"title": "aspect", "detail": "16:9"} in saved["items"]
    job = (await web.say("a wide field"))["jobs"][0]
    assert job["count"] == 2 and job["aspect"] == "16:9"
    bad = await web.post("/api/channels/general/say", {"text": "/settings colour=red"}, user="alice")
    assert bad.status == 400 and "colour" in (await bad.json())["error"]


async def test_nobody_changes_channel_settings_on_the_web(web: Web) -> None:
    response = await web.post("/api/channels/general/say", {"text": "/settings channel count=1"}, user="alice")
    assert response.status == 403 and "admin" in (await response.json())["error"]


async def test_help_and_unknown_commands(web: Web) -> None:
    helped = await web.say("/help")
    titles = [item["title"] for item in helped["items"]]
    assert any(t.startswith("/imagine") for t in titles) and "--ar W:H" in titles
    response = await web.post("/api/channels/general/say", {"text": "/dance now"}, user="alice")
    assert response.status == 400 and "/dance" in (await response.json())["error"]
