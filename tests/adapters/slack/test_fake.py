"""The fake Slack itself: it catches what real Slack would refuse, so passing tests mean something."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.fakes.slack import FakeSlack
from tests.fakes.slack.spec import SpecChecker


@pytest.fixture
async def http(fake: FakeSlack) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=fake.base_url) as session:
        yield session


async def _call(http: aiohttp.ClientSession, method: str, token: str | None, **params: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.post(f"/api/{method}", data=params, headers=headers) as response:
        answer: dict[str, Any] = await response.json()
        return answer


async def test_tokens_are_checked_per_method(fake: FakeSlack, http: aiohttp.ClientSession) -> None:
    assert (await _call(http, "auth.test", None))["error"] == "not_authed"
    assert (await _call(http, "auth.test", "xoxb-wrong"))["error"] == "invalid_auth"
    assert (await _call(http, "apps.connections.open", fake.bot_token))["error"] == "invalid_auth"
    opened = await _call(http, "apps.connections.open", fake.app_token)
    assert opened["url"].startswith(f"ws://127.0.0.1:{fake.port}/link/?ticket=")
    assert fake.spec.violations == []


async def test_requests_are_checked_against_the_spec_and_the_contracts(
    fake: FakeSlack, http: aiohttp.ClientSession
) -> None:
    channel = fake.add_channel("general", [])
    await _call(http, "chat.postMessage", fake.bot_token, channel=channel, text="hi", bogus="1")
    await _call(http, "chat.postMessage", fake.bot_token, text="hi")
    await _call(http, "chat.postMessage", fake.bot_token, channel=channel, text="hi", unfurl_links="maybe")
    await _call(http, "files.getUploadURLExternal", fake.bot_token, filename="a.png")
    await _call(http, "files.completeUploadExternal", fake.bot_token, files="[]", thread_ts="1.000001")
    await _call(http, "chat.postMessage", fake.bot_token, channel=channel, text="hi", team_id="TFAKE0001")
    details = [v.detail for v in fake.spec.violations]
    assert details == [
        "unknown parameter 'bogus'",
        "missing required parameter 'channel'",
        "'unfurl_links' is not a boolean: 'maybe'",
        "missing required parameter 'length'",
    ]


def test_answers_are_checked_against_the_response_schemas() -> None:
    spec = SpecChecker()
    spec.response("chat.postMessage", {"ok": True, "channel": "C0000000001", "ts": "nope"})
    spec.response("files.getUploadURLExternal", {"ok": True, "upload_url": "http://x/u"})
    spec.response("chat.update", {"ok": False, "error": "ratelimited"})  # allowed: the spec's enum is stale
    assert [v.method for v in spec.violations] == ["chat.postMessage", "chat.postMessage", "files.getUploadURLExternal"]
    assert spec.allowed == 1


async def test_block_kit_limits_are_enforced(fake: FakeSlack, http: aiohttp.ClientSession) -> None:
    channel = fake.add_channel("general", [])
    button = {"type": "button", "text": {"type": "plain_text", "text": "x" * 76}, "action_id": "a" * 256}
    layout = '[{"type": "actions", "elements": [' + __import__("json").dumps(button) + "]}]"
    await _call(http, "chat.postMessage", fake.bot_token, channel=channel, text="hi", blocks=layout)
    problems = [v.detail for v in fake.spec.violations if v.kind == "blocks"]
    assert any("longer than 255" in p for p in problems) and any("1 to 75" in p for p in problems)


async def test_uploads_must_match_their_announced_length(fake: FakeSlack, http: aiohttp.ClientSession) -> None:
    issued = await _call(http, "files.getUploadURLExternal", fake.bot_token, filename="a.png", length="4")
    async with http.post(issued["upload_url"], data=b"12345") as response:
        assert response.status == 400
    done = await _call(http, "files.completeUploadExternal", fake.bot_token,
                       files=f'[{{"id": "{issued["file_id"]}"}}]')
    assert done["error"] == "file_not_found"
    assert any("5 bytes sent, 4 announced" in v.detail for v in fake.spec.violations)


async def test_response_urls_allow_five_uses_in_thirty_minutes(fake: FakeSlack, http: aiohttp.ClientSession) -> None:
    user = fake.add_user("ann")
    channel = fake.add_channel("general", [user])
    url = fake.new_response_url(channel, user)
    statuses = []
    for _ in range(6):
        async with http.post(url, json={"text": "hello"}) as response:
            statuses.append(response.status)
    assert statuses == [200] * 5 + [404]
    late = fake.new_response_url(channel, user)
    fake.clock.jump(31 * 60)
    async with http.post(late, json={"text": "hello"}) as response:
        assert response.status == 404 and await response.text() == "expired_url"
    assert fake.refused_responses == 2
