"""The card buttons (U1-U4, V1-V4, reroll, delete, favourite, cancel) and the commands in the prompt box."""

from __future__ import annotations

from bot.jobs import JobStatus, Origin
from tests.adapters.web.conftest import Web, WebFactory


async def _finished_job(web: Web, text: str = "a red fox --n 4", user: str = "alice") -> str:
    job_id = await web.submit(text, user=user)
    assert (await web.finished(job_id)).status is JobStatus.SUCCEEDED
    return job_id


async def test_v2_makes_variations_of_the_second_image(web: Web) -> None:
    source = await _finished_job(web)
    response = await web.act(source, "vary", user="bob", index=1)
    reply = await response.json()
    assert response.status == 200 and reply["kind"] == "jobs"
    [job] = reply["jobs"]
    assert job["kind"] == "variation" and job["source_job_id"] == source and job["source_index"] == 1
    assert job["user"] == "bob", "anyone may vary; the new job is theirs"
    done = await web.finished(job["id"])
    assert done.status is JobStatus.SUCCEEDED
    assert len(await web.app.storage.job_images(job["id"])) == 4


async def test_u3_upscales_the_third_image(web: Web) -> None:
    source = await _finished_job(web)
    reply = await (await web.act(source, "upscale", index=2)).json()
    [job] = reply["jobs"]
    assert job["kind"] == "upscale" and job["count"] == 1
    await web.finished(job["id"])
    [image] = await web.app.storage.job_images(job["id"])
    assert image.width == 128, "a 2x upscale of a 64 px sketch"


async def test_reroll_queues_the_same_prompt_again(web: Web) -> None:
    source = await _finished_job(web, "a blue whale --n 2")
    reply = await (await web.act(source, "reroll", user="bob")).json()
    [job] = reply["jobs"]
    assert job["prompt"] == "a blue whale" and job["count"] == 2 and job["id"] != source


async def test_only_the_owner_deletes_and_everyone_watching_sees_it_go(web: Web) -> None:
    source = await _finished_job(web)
    refused = await web.act(source, "delete", user="bob")
    assert refused.status == 403
    assert "Only the person who made this" in (await refused.json())["error"]
    async with web.client.ws_connect("/ws/general") as ws:
        deleted = await web.act(source, "delete", user="alice")
        assert deleted.status == 200 and (await deleted.json())["kind"] == "deleted"
        event = await ws.receive_json(timeout=5)
    assert event == {"type": "deleted", "job_id": source}
    cards = await (await web.get("/api/channels/general/cards")).json()
    assert cards["cards"] == []
    gone = await web.act(source, "vary", index=0)
    assert gone.status == 404


async def test_favourites_count_in_the_gallery(web: Web) -> None:
    source = await _finished_job(web)
    for user in ("alice", "bob"):
        response = await web.act(source, "favourite", user=user, index=0, on=True)
        assert (await response.json()) == {"kind": "favourite", "job_id": source, "index": 0, "on": True}
    gallery = await (await web.get("/api/gallery/web/general")).json()
    first = next(i for i in gallery["items"] if i["image"]["index"] == 0)
    assert first["favourites"] == 2
    await web.act(source, "favourite", user="bob", index=0, on=False)
    gallery = await (await web.get("/api/gallery/web/general")).json()
    assert next(i for i in gallery["items"] if i["image"]["index"] == 0)["favourites"] == 1


async def test_only_the_owner_cancels_a_running_job(make_web: WebFactory) -> None:
    web = await make_web(sketch={"delay": 5.0})
    job_id = await web.submit("a very slow painting --n 1")
    refused = await web.act(job_id, "cancel", user="bob")
    assert refused.status == 403
    response = await web.act(job_id, "cancel", user="alice")
    assert response.status == 200 and job_id in (await response.json())["text"]
    assert (await web.finished(job_id)).status is JobStatus.CANCELLED
    again = await web.act(job_id, "cancel", user="alice")
    assert again.status == 400 and "already finished" in (await again.json())["error"]


async def test_buttons_on_an_unfinished_job_or_a_missing_image_explain_themselves(make_web: WebFactory) -> None:
    web = await make_web(sketch={"delay": 5.0})
    job_id = await web.submit("a very slow painting --n 1")
    early = await web.act(job_id, "vary", index=0)
    assert early.status == 400 and "not finished" in (await early.json())["error"]
    for bad in (-1, 4, "1", True, None):
        response = await web.act(job_id, "upscale", index=bad)
        assert response.status == 400 and "image from 1 to 4" in (await response.json())["error"]
    unknown = await web.act(job_id, "explode")
    assert unknown.status == 404
    missing = await web.act("0000000000zz", "reroll")
    assert missing.status == 404 and "can't find" in (await missing.json())["error"]
    await web.act(job_id, "cancel")


async def test_jobs_of_other_platforms_are_invisible_to_web_buttons(web: Web) -> None:
    discord = Origin(platform="discord", server_id="g1", channel_id="c1", user_id="u1")
    [job] = await web.app.service.submit("a secret --n 1", discord)
    await web.finished(job.id, delivered=False)
    response = await web.act(job.id, "vary", index=0)
    assert response.status == 404
