"""The [slack] keys, choosing the transport, start-up errors, and the adapter's small pure parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.slack.app import launch
from adapters.slack.buttons import action_id, parse_action_id, parse_page_id
from adapters.slack.dedup import EventDeduplication
from adapters.slack.lookup import job_id_from_message
from adapters.slack.pacing import PostPacer
from adapters.slack.text import clip, escape, plain, shown
from bot.app import build_app
from bot.clock import FakeClock
from bot.config import config_from_dict
from bot.errors import ConfigError
from tests.fakes.slack import FakeSlack


def test_slack_keys_are_validated() -> None:
    config = config_from_dict({"slack": {"bot_token": "xoxb-1", "app_token": "xapp-1", "signing_secret": "s",
                                         "api_base_url": "http://proxy/api/"}}, environ={})
    assert config.slack.upload_limit_mb == 20 and config.slack.api_base_url == "http://proxy/api/"
    for bad in ({"bot_tokn": "x"}, {"upload_limit_mb": 0}):
        with pytest.raises(ConfigError):
            config_from_dict({"slack": bad}, environ={})


async def _app(fake: FakeSlack, tmp_path: Path, **slack: str) -> object:
    raw = {"storage": {"dir": str(tmp_path)}, "web": {"enabled": False},
           "slack": {"api_base_url": fake.api_base_url, **slack}}
    return await build_app(config_from_dict(raw, environ={}))


@pytest.mark.parametrize(("slack", "message"), [
    ({"bot_token": "BOT"}, "signing_secret"),
    ({"bot_token": "BOT", "signing_secret": "s"}, r"enable \[web\]"),
    ({"bot_token": "xoxb-wrong", "app_token": "APP"}, "refused .slack. bot_token"),
    ({"bot_token": "BOT", "app_token": "xapp-wrong"}, "refused .slack. app_token"),
])
async def test_start_up_errors_say_what_to_fix(fake: FakeSlack, tmp_path: Path, slack: dict[str, str],
                                               message: str) -> None:
    values = {k: v.replace("BOT", fake.bot_token).replace("APP", fake.app_token) for k, v in slack.items()}
    app = await build_app(config_from_dict({
        "storage": {"dir": str(tmp_path)}, "web": {"enabled": False},
        "slack": {"api_base_url": fake.api_base_url, **values},
    }, environ={}))
    try:
        with pytest.raises(ConfigError, match=message):
            await launch(app)
        assert "slack" not in app.surfaces
    finally:
        await app.stop(grace_seconds=0)


def test_text_from_slack_is_made_plain() -> None:
    typed = "cats &amp; dogs &lt;3 <@U1|ann> <@U2> <#C1|art> <!here> <!subteam^S1|@team> <https://x.org|site> <https://y.org>"
    assert plain(typed) == "cats & dogs <3 @ann @U2 #art @here @team site https://y.org"


def test_echoed_text_cannot_mention_or_broadcast() -> None:
    assert escape("<!channel> & <@U1>") == "&lt;!channel&gt; &amp; &lt;@U1&gt;"
    assert escape("hi @here and @Everyone") == "hi @\u2060here and @\u2060Everyone"
    assert clip("a &amp; b", 5) == "a …"  # never ends inside an entity
    assert shown("x" * 10, 4) == "xxx…"


def test_action_ids_carry_the_job_and_stay_short() -> None:
    assert action_id("v", "1m7zyjdpsj91s0", 2) == "ib:v:1m7zyjdpsj91s0:2"
    assert parse_action_id("ib:v:1m7zyjdpsj91s0:2") == ("v", "1m7zyjdpsj91s0", 2)
    assert parse_action_id("ib:r:1m7zyjdpsj91s0") == ("r", "1m7zyjdpsj91s0", None)
    assert parse_action_id("ib:x:job") is None and parse_action_id("ib:v:job:9") is None
    assert parse_page_id("ibp:h:3") == ("h", 3) and parse_page_id("ibp:z:1") is None


def test_a_card_names_its_job_in_buttons_or_text() -> None:
    buttons = {"blocks": [{"type": "actions", "elements": [{"action_id": "ib:r:abc123"}]}], "text": "x"}
    assert job_id_from_message(buttons) == "abc123"
    assert job_id_from_message({"text": "job def456: Done. a cat"}) == "def456"
    assert job_id_from_message({"text": "a job lot: of cats"}) is None


async def test_posts_are_paced_per_channel_after_a_burst() -> None:
    import asyncio

    clock = FakeClock()
    pacer = PostPacer(clock, interval=1.0, burst=3)
    for _ in range(3):
        await pacer.wait("C1")  # a burst of three goes at once
    fourth = asyncio.ensure_future(pacer.wait("C1"))
    await pacer.wait("C2")  # another channel never waits for this one
    await clock.advance(0.9)
    assert not fourth.done()
    await clock.advance(0.2)
    await fourth


def test_event_memory_is_bounded() -> None:
    dedup = EventDeduplication(size=2)
    assert dedup.first_time("a") and dedup.first_time("b") and not dedup.first_time("a")
    assert dedup.first_time("c")  # the oldest ("b", as "a" was seen again) is forgotten
    assert not dedup.first_time("a") and dedup.first_time("b")
