"""Signatures, retried deliveries, broadcasts in prompts, and secrets kept out of logs and messages."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from urllib.parse import urlencode

import pytest

from tests.adapters.slack.conftest import World, WorldFactory

#: What must never reach Slack from something a user typed: broadcasts, mentions, links.
LIVE = re.compile(r"<[!@#]|<https?:|(?<!@\u2060)@(channel|here|everyone)\b", re.IGNORECASE)


def _command_body(world: World, text: str) -> str:
    return urlencode({
        "token": "x", "team_id": world.fake.team_id, "channel_id": world.channel, "user_id": world.alice,
        "user_name": "alice", "command": "/imagine", "text": text, "api_app_id": world.fake.app_id,
        "response_url": world.fake.new_response_url(world.channel, world.alice),
        "trigger_id": world.fake.new_trigger(world.alice),
    })


async def test_forged_and_stale_signatures_are_refused(make_world: WorldFactory) -> None:
    world = await make_world(transport="http")
    driver, form = world.driver, "application/x-www-form-urlencoded"
    body = _command_body(world, "a forged cat")
    forged = await driver.post(body, form, driver.signed_headers(body, secret="not-the-secret"))
    stale = await driver.post(body, form, driver.signed_headers(body, timestamp=time.time() - 400))
    unsigned = await driver.post(body, form, {})
    tampered_headers = driver.signed_headers(body)
    tampered = await driver.post(body.replace("forged", "tampered"), form, tampered_headers)
    assert [r.status for r in (forged, stale, unsigned, tampered)] == [401, 401, 401, 401]
    event = json.dumps({"type": "event_callback", "event_id": "EvForged", "team_id": world.fake.team_id,
                        "event": {"type": "reaction_added", "user": world.alice, "reaction": "repeat",
                                  "item": {"type": "message", "channel": world.channel, "ts": "1.000001"}}})
    assert (await driver.post(event, "application/json", driver.signed_headers(event, secret="x"))).status == 401
    fresh = await driver.post(body, form, driver.signed_headers(body, timestamp=time.time() - 200))
    assert fresh.status == 200  # within the 300 s window
    await world.new_jobs(set())
    await asyncio.sleep(0.3)
    assert [j.request.prompt for j in await world.all_jobs()] == ["a forged cat"]  # only the signed one ran


async def test_slacks_url_check_gets_its_challenge_back(make_world: WorldFactory) -> None:
    world = await make_world(transport="http")
    body = json.dumps({"token": "x", "challenge": "c4ll3ng3", "type": "url_verification"})
    answer = await world.driver.post(body, "application/json", world.driver.signed_headers(body))
    assert answer.status == 200 and answer.body == {"challenge": "c4ll3ng3"}


async def test_socket_mode_serves_no_http_endpoint(make_world: WorldFactory) -> None:
    world = await make_world(transport="socket", web={"enabled": True})
    body = _command_body(world, "a cat over http")
    answer = await world.driver.post(body, "application/x-www-form-urlencoded", world.driver.signed_headers(body))
    assert answer.status == 404
    await asyncio.sleep(0.3)
    assert await world.job_ids() == set()


async def test_retried_event_deliveries_act_once(world: World) -> None:
    job = await world.imagine("a single kite --n 1")
    card = world.card(job)
    before = await world.job_ids()
    await world.driver.react(card, "repeat", user=world.bob, event_id="Ev0RETRY01")
    again = await world.driver.react(card, "repeat", user=world.bob, event_id="Ev0RETRY01", retry=1)
    assert again.status == 200
    await world.new_jobs(before)
    await asyncio.sleep(0.5)
    assert len(await world.job_ids() - before) == 1
    assert world.slack.dedup.duplicates == 1


async def test_broadcasts_and_mentions_in_prompts_are_never_live(world: World) -> None:
    typed = ("<!channel> <!here> <!everyone|everyone> @here @Channel <@U0000000003|bob> <#C0000000005|art> "
             "<https://evil.example|click> &lt;!channel&gt; *loud* " + "x" * 3000)
    before = await world.job_ids()
    await world.driver.slash("/imagine", typed + " --n 1", user=world.alice, channel=world.channel)
    (job,) = await world.new_jobs(before)
    job = await world.finished(job.id)
    assert job.request.prompt.startswith("@channel @here @everyone @here @Channel @bob #art click <!channel> *loud*")
    await world.driver.slash("/imagine", "<!channel> --ar banana", user=world.alice, channel=world.channel)
    await world.ephemeral(world.alice, "--ar")
    sent = [c.raw for c in world.fake.calls] + world.fake.received
    sent += [json.dumps(m.blocks) + m.text for m in world.fake.messages.values()]
    sent += [json.dumps(e.blocks) + e.text for e in world.fake.ephemerals]
    sent += [u.comment + "".join(f.title or "" for f in u.files) for u in world.fake.uploads]
    live = [m.group(0) for text in sent for m in [LIVE.search(_decoded(text))] if m]
    assert live == []
    assert "&lt;!channel&gt;" in json.dumps(world.card(job).blocks)
    assert world.fake.spec.violations == []


def _decoded(text: str) -> str:
    from urllib.parse import unquote_plus

    return unquote_plus(text) if "=" in text and "%" in text else text


async def test_tokens_and_the_signing_secret_never_leak(world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    job = await world.imagine("a lamp --n 2")
    await world.driver.react(world.card(job), "star", user=world.bob)
    await world.driver.slash("/imagine", "--ar 9:1 a cat", user=world.bob, channel=world.channel)
    await world.ephemeral(world.bob, "4:1")
    if world.transport == "http":
        body = _command_body(world, "forged")
        await world.driver.post(body, "application/x-www-form-urlencoded", {"X-Slack-Signature": "v0=00"})
    secrets = [world.fake.bot_token, world.fake.app_token, world.fake.signing_secret]
    records = caplog.text + "".join(str(r.args) for r in caplog.records)
    bodies = [c.raw for c in world.fake.calls] + world.fake.received
    bodies += [json.dumps(a.payload) for a in world.fake.socket.acks.values()]
    for secret in secrets:
        assert secret not in records
        assert not [b for b in bodies if secret in b]
    assert all(c.token == "ok" for c in world.fake.calls)  # the tokens did travel, in Authorization
