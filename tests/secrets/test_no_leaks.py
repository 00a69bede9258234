"""No token or key ever shows: not in logs, chat messages, web pages, errors, or stored data.

Every secret the bot can hold gets a distinctive value: the Discord bot token, an OpenAI key (and
a wrong one, for a 401), the Slack signing secret and the gallery link secret. Then the bot runs
end to end, with failures forced on purpose, and everything it said anywhere is captured:

* ``imaginebot run --log-level debug`` as a subprocess, against the fake Discord and the fake
  OpenAI: its stdout and stderr (every logger at DEBUG, discord.py and the OpenAI SDK included),
  every web page it serves, every request body and message the fakes received, ``imaginebot
  doctor``'s report, and the database it leaves;
* the same kind of session in-process with pytest's log capture at DEBUG, where no log filter
  masks anything: what the code itself puts in a log line or an error;
* ``imaginebot`` started with broken config files that contain the secrets.

None of the values, nor their first 8 characters, may appear in any of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.jobs import JobStatus
from bot.links import GalleryLinks
from bot.logs import MASK
from tests.adapters.discord.conftest import World, WorldFactory
from tests.fakes.discord import FakeDiscord
from tests.fakes.openai_api import FakeOpenAI

ROOT = Path(__file__).resolve().parents[2]
SECRETS = {
    "Discord token": "Nzk5ODA3OTQ0NzQ3NjcwNTI4.GcNry1.discordTokenLeakCanary_0123456789abcdefXYZ",
    "OpenAI key": "sk-CanaryOpenAIkey-0123456789abcdefghijklmnopqrstuvwxyzABCDEF",
    "wrong OpenAI key": "sk-WrongCanaryKey-9876543210zyxwvutsrqponmlkjihgfedcbaFEDCBA",
    "Slack signing secret": "SgnCanary7f3a9b2c5d1e8f4a6b0c9d2e7f1a3b5",
    "link secret": "LinkCanary-5b7d9f1e3a5c7e9b1d3f5a7c9e1b3d5f",
}
ENV = {
    "IMAGINEBOT_DISCORD_TOKEN": SECRETS["Discord token"],
    "IMAGINEBOT_OPENAI_KEY": SECRETS["OpenAI key"],
    "IMAGINEBOT_WRONG_KEY": SECRETS["wrong OpenAI key"],
    "IMAGINEBOT_SIGNING_SECRET": SECRETS["Slack signing secret"],
    "IMAGINEBOT_LINK_SECRET": SECRETS["link secret"],
}


def assert_clean(where: str, text: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in text, f"the {name} appears in {where}"
        assert secret[:8] not in text, f"the start of the {name} appears in {where}"


def _config_toml(tmp_path: Path, discord: FakeDiscord, openai: FakeOpenAI, guild: str) -> Path:
    path = tmp_path / "config.toml"
    openai_url = f"http://127.0.0.1:{openai.port}/v1"
    path.write_text(f"""
[storage]
dir = "{tmp_path / 'data'}"

[web]
host = "127.0.0.1"
port = 0
public_url = "https://gallery.example"
link_secret = "${{IMAGINEBOT_LINK_SECRET}}"

[discord]
token = "${{IMAGINEBOT_DISCORD_TOKEN}}"
api_base_url = "{discord.api_base_url}"
gateway_url = "{discord.gateway_url}"
dev_guild_ids = ["{guild}"]

[slack]
signing_secret = "${{IMAGINEBOT_SIGNING_SECRET}}"

[providers.openai]
type = "openai"
api_key = "${{IMAGINEBOT_OPENAI_KEY}}"
model = "gpt-image-1"
base_url = "{openai_url}"
partial_images = 0

[providers.broken]
type = "openai"
api_key = "${{IMAGINEBOT_WRONG_KEY}}"
model = "gpt-image-1"
base_url = "{openai_url}"
partial_images = 0

[routing]
default = "openai"

[limits]
daily_budget_usd_per_server = 0
""")
    return path


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeDiscord, FakeOpenAI]]:
    discord = FakeDiscord()
    openai = FakeOpenAI(api_key=SECRETS["OpenAI key"])
    await discord.start()
    await openai.start()
    yield discord, openai
    await openai.close()
    await discord.close()


async def _cli(*args: str, cwd: Path) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


class Running:
    """``imaginebot run`` in a subprocess; its output is read as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.output: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.output.append(line.decode(errors="replace"))

    async def wait_for(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        async with asyncio.timeout(timeout):
            while True:
                for line in self.output:
                    if found := re.search(pattern, line):
                        return found
                await asyncio.sleep(0.05)

    async def stop(self) -> str:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 30)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.wait_for(self._reader, 10)
        return "".join(self.output)


async def _fetch_pages(base: str, links: GalleryLinks, channel: str) -> dict[str, str]:
    """Every kind of page and API answer the web server gives, with its headers."""
    gallery = links.path("discord", channel, now=time.time())
    exp_sig = gallery.split("?", 1)[1]
    pages: dict[str, str] = {}
    async with aiohttp.ClientSession(base_url=base, cookies={"imaginebot_name": "mallory"}) as http:
        async with http.post("/api/channels/general/say", json={"text": "a kite --n 1 --provider broken"}) as r:
            pages["say"] = await r.text()
        async with http.post("/api/channels/general/say", data=b"not json",
                             headers={"Content-Type": "application/json"}) as r:
            pages["bad say"] = await r.text()
        await asyncio.sleep(1.5)  # the broken provider's job fails meanwhile
        for path in ("/", "/healthz", "/metrics", "/c/general", "/api/me", "/api/channels",
                     "/api/channels/general/cards", gallery, f"/api/gallery/discord/{channel}?{exp_sig}",
                     "/c/discord/123?exp=1&sig=forged", "/api/gallery/discord/123?exp=9999999999&sig=x",
                     "/img/" + "0" * 64, "/static/../../etc/passwd", "/nope"):
            async with http.get(path) as r:
                pages[path] = f"{r.status} {dict(r.headers)}\n{await r.text(errors='replace')}"
    assert any("Failed" in text or "credit or quota" in text for text in pages.values()), "the failure is shown"
    return pages


def _fakes_received(discord: FakeDiscord, openai: FakeOpenAI) -> str:
    seen: list[Any] = []
    for call in discord.calls:
        seen += [call.route, call.params, call.query, call.body.json, call.answer]
    for message in discord.state.messages.values():
        seen += [message.content, message.embeds, message.components, [a.filename for a in message.attachments]]
    seen += discord.gateway.identifies
    for request in openai.received:
        seen += [request.path, request.json, request.form]
    return json.dumps(seen, default=str)


def _database_text(path: Path) -> str:
    with sqlite3.connect(path) as conn:
        return "\n".join(conn.iterdump())


async def test_a_whole_run_of_the_bot_shows_no_secret_anywhere(
    tmp_path: Path, fakes: tuple[FakeDiscord, FakeOpenAI]
) -> None:
    discord, openai = fakes
    guild = discord.add_guild()
    channel = discord.add_channel(guild, "art")
    alice = discord.add_member(guild, "alice")
    config = _config_toml(tmp_path, discord, openai, guild)

    code, doctor = await _cli("doctor", "--config", str(config), cwd=tmp_path)
    assert "[discord]" in doctor and "[providers]" in doctor or "provider" in doctor, doctor
    assert_clean("the doctor's report", doctor)

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "--log-level", "debug", "run", "--config", str(config), "--grace", "1",
        cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)},
    )
    bot = Running(proc)
    try:
        port = int((await bot.wait_for(r"web playground: open http://127\.0\.0\.1:(\d+)"))[1])
        await discord.wait_until(lambda: bool(discord.state.commands.get(guild)), timeout=30)
        await bot.wait_for(r"is running")

        drawn = await discord.slash("imagine", {"prompt": "a lighthouse", "count": 1}, user=alice, channel=channel)
        refused = await discord.slash("imagine", {"prompt": "a fox", "count": 1, "provider": "broken"},
                                      user=alice, channel=channel)
        await discord.slash("imagine", {"prompt": "a cat", "aspect": "banana"}, user=alice, channel=channel)
        await discord.wait_until(lambda: drawn.original_id is not None and refused.original_id is not None, 30)
        await discord.wait_until(lambda: any(m.attachments for m in discord.state.messages.values()), 30)
        await discord.wait_until(
            lambda: "credit or quota" in json.dumps(discord.state.messages[refused.original_id or ""].embeds), 30)
        links = GalleryLinks(secret=SECRETS["link secret"].encode(), base_url="", ttl_seconds=3600)
        pages = await _fetch_pages(f"http://127.0.0.1:{port}", links, channel)
    finally:
        output = await bot.stop()

    assert bot.proc.returncode == 0, output[-3000:]
    assert re.search(r"DEBUG discord\.", output) and re.search(r"DEBUG openai\.", output), "SDK debug logs captured"
    assert "401" in output or "not accepted" in output, "the 401 was logged"
    assert_clean("the bot's stdout and stderr", output)
    assert MASK not in output, "nothing even needed the log mask: no secret reached a log call"
    for path, text in pages.items():
        assert_clean(f"the web answer to {path}", text)
    assert_clean("what the fakes received (requests, messages, IDENTIFY)", _fakes_received(discord, openai))
    assert_clean("the database", _database_text(tmp_path / "data" / "imaginebot.db"))
    assert not list((tmp_path / "data").glob("link-secret")), "a configured link secret is not written to disk"


async def test_in_process_logs_and_errors_hold_no_secret_even_unmasked(
    make_world: WorldFactory, caplog: pytest.LogCaptureFixture
) -> None:
    openai = FakeOpenAI(api_key=SECRETS["OpenAI key"])
    await openai.start()
    section = {"type": "openai", "model": "gpt-image-1", "base_url": f"http://127.0.0.1:{openai.port}/v1",
               "partial_images": 0}
    caplog.set_level(logging.DEBUG)
    try:
        world: World = await make_world(
            discord={"token": SECRETS["Discord token"]},
            web={"link_secret": SECRETS["link secret"], "public_url": "https://gallery.example"},
            slack={"signing_secret": SECRETS["Slack signing secret"]},
            providers={"openai": {**section, "api_key": SECRETS["OpenAI key"]},
                       "broken": {**section, "api_key": SECRETS["wrong OpenAI key"]}},
            routing={"default": "openai"},
            limits={"daily_budget_usd_per_server": 0},
        )
        inters = [
            await world.fake.slash("imagine", {**options, "count": 1}, user=world.alice, channel=world.channel)
            for options in ({"prompt": "a lighthouse"}, {"prompt": "a fox", "provider": "broken"},
                            {"prompt": "a cat", "aspect": "banana"}, {"prompt": "x" * 5000})
        ]
        await world.fake.wait_until(lambda: all(i.responded is not None for i in inters))
        await world.fake.wait_until(lambda: len(world.ephemeral_replies()) == 2)  # the two refusals
        async with asyncio.timeout(10):
            while len(jobs := await world.app.storage.user_jobs("discord", world.alice, list(JobStatus))) < 2:
                await asyncio.sleep(0.02)
        finished = [await world.finished(job.id, timeout=20) for job in jobs]
        errors = [job.error or "" for job in finished] + [m.content for m in world.ephemeral_replies()]
        errors.append((await world.app.providers["broken"].health()).detail)
        received = _fakes_received(world.fake, openai)
    finally:
        await openai.close()
    assert {job.status for job in finished} == {JobStatus.SUCCEEDED, JobStatus.FAILED}
    assert any("credit or quota" in error for error in errors), errors
    assert any(r.name.startswith("discord.") and r.levelno == logging.DEBUG for r in caplog.records)
    assert any(r.name.startswith("openai") for r in caplog.records), "the OpenAI SDK's own logs were captured"
    assert any("not accepted (HTTP 401)" in r.getMessage() for r in caplog.records), "the 401 was logged"
    for text in [r.getMessage() for r in caplog.records] + [caplog.text] + errors + [received]:
        assert_clean("an in-process log line, error or request", text)


@pytest.mark.parametrize("body", [
    '[discord]\ntoken = "${IMAGINEBOT_DISCORD_TOKEN}"\ntokne = "${IMAGINEBOT_DISCORD_TOKEN}"\n',
    '[discord]\ntoken = "' + SECRETS["Discord token"] + '"\nshard_count = 0\n',
    '[web]\nlink_secret = "' + SECRETS["link secret"] + '"\nport = "' + SECRETS["link secret"] + '"\n',
    '[slack]\nsigning_secret = "' + SECRETS["Slack signing secret"] + '\n',  # an unterminated string
    '[providers.openai]\ntype = "openai"\napi_key = "${IMAGINEBOT_OPENAI_KEY}"\nmodel = ""\n',
    '[providers.openai]\ntype = "openai"\napi_key = "' + SECRETS["OpenAI key"] + '"\nmodel = "m"\nsize = 3\n',
    '[providers.openai]\ntype = "openai"\napi_key = "${MISSING_KEY}"\nmodel = "m"\n',
    '[routing]\ndefault = "' + SECRETS["OpenAI key"][:3] + '"\n[discord]\ntoken = "' + SECRETS["Discord token"] + '"\n',
])
def test_config_errors_never_echo_a_secret(tmp_path: Path, body: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(body)
    # Both commands read the config the same way; ``run`` also builds the providers inside the loop.
    commands = [["providers", "--config", str(config)]]
    if "providers." in body:
        commands.append(["run", "--config", str(config)])
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", *command], cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 2, result.stderr
        assert "imaginebot:" in result.stderr and "Traceback" not in result.stderr, result.stderr
        assert_clean(f"the error of `imaginebot {command[0]}`", result.stdout + result.stderr)
