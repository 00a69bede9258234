"""Channel galleries: newest first, keyset pages, filters and full-text prompt search."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.adapters.web.conftest import Web


async def _made(web: Web, text: str, *, user: str = "alice", channel: str = "art") -> str:
    job_id = await web.submit(text, user=user, channel=channel)
    await web.finished(job_id)
    return job_id


async def _gallery(web: Web, query: str = "", channel: str = "art") -> dict[str, Any]:
    response = await web.get(f"/api/gallery/web/{channel}{query}")
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def test_the_gallery_page_is_served_for_playground_channels(web: Web) -> None:
    response = await web.get("/c/art")
    assert response.status == 200 and response.content_type == "text/html"
    assert '<script src="/static/gallery.js"' in await response.text()
    assert (await web.get("/c/bad%20name")).status == 404


async def test_newest_first_with_every_parameter(web: Web) -> None:
    older = await _made(web, "a red fox --n 2 --seed 7")
    newer = await _made(web, "a green owl --n 1", user="bob")
    body = await _gallery(web)
    assert [(i["job"]["id"], i["image"]["index"]) for i in body["items"]] == [(newer, 0), (older, 0), (older, 1)]
    item = body["items"][1]
    assert item["image"]["seed"] == 7 and item["image"]["provider"] == "sketch"
    assert item["image"]["model"] and item["image"]["cost_usd"] == 0.0
    assert item["job"]["started_at"] <= item["job"]["finished_at"]
    assert item["job"]["command"].startswith("a red fox") and "--seed 7" in item["job"]["command"]


async def test_keyset_pages_neither_repeat_nor_skip(web: Web) -> None:
    await _made(web, "a red fox --n 4")
    await _made(web, "a blue fox --n 3")
    seen = []
    cursor = None
    while True:
        query = "?limit=2" + (f"&cursor={cursor}" if cursor else "")
        body = await _gallery(web, query)
        seen += [(i["job"]["id"], i["image"]["index"]) for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 7 == len(set(seen))


async def test_filters_by_user_provider_date_and_words(web: Web) -> None:
    fox = await _made(web, "a red fox in the snow --n 1")
    owl = await _made(web, "a green owl at night --n 1", user="bob")

    def ids(body: dict[str, Any]) -> list[str]:
        return [i["job"]["id"] for i in body["items"]]

    assert ids(await _gallery(web, "?user=bob")) == [owl]
    assert ids(await _gallery(web, "?provider=sketch")) == [owl, fox]
    assert ids(await _gallery(web, "?provider=nope")) == []
    assert ids(await _gallery(web, "?q=snow%20fox")) == [fox]
    assert ids(await _gallery(web, "?q=owl")) == [owl]
    assert ids(await _gallery(web, "?q=%22AND%20NOT%20(")) == [], "search text is never query syntax"
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert ids(await _gallery(web, f"?since={today}&until={today}")) == [owl, fox]
    assert ids(await _gallery(web, "?until=2001-01-01")) == []


@pytest.mark.parametrize(
    "query",
    ["?since=yesterday", "?until=2024-13-40", "?limit=0", "?limit=500", "?limit=abc", "?cursor=not-a-cursor",
     "?q=" + "x" * 201],
)
async def test_bad_filters_are_explained(web: Web, query: str) -> None:
    response = await web.get(f"/api/gallery/web/art{query}")
    assert response.status == 400
    assert (await response.json())["error"]


async def test_deleted_jobs_leave_the_gallery(web: Web) -> None:
    job_id = await _made(web, "a red fox --n 1")
    await web.act(job_id, "delete", channel="art")
    assert (await _gallery(web))["items"] == []
