"""``imaginebot run`` with Slack tokens, as an operator starts it, in both transports."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from tests.adapters.slack.conftest import TRANSPORTS, free_port
from tests.fakes.slack import FakeSlack, SlackDriver

ROOT = Path(__file__).resolve().parents[3]


def _config(tmp_path: Path, fake: FakeSlack, transport: str, port: int) -> Path:
    slack = f'bot_token = "{fake.bot_token}"\napi_base_url = "{fake.api_base_url}"\n'
    if transport == "socket":
        slack += f'app_token = "{fake.app_token}"\n'
    else:
        slack += f'signing_secret = "{fake.signing_secret}"\n'
    path = tmp_path / "config.toml"
    path.write_text(
        f'[storage]\ndir = "{tmp_path / "data"}"\n'
        f'[web]\nenabled = {"true" if transport == "http" else "false"}\nport = {port}\n'
        f'[providers.sketch]\ntype = "sketch"\ndelay = 0.1\nsize = 64\n'
        f"[slack]\n{slack}"
    )
    return path


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_imaginebot_run_serves_slack(fake: FakeSlack, tmp_path: Path, transport: str) -> None:
    port = free_port()
    people = [fake.add_user("ann")]
    channel = fake.add_channel("art", people)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--config", str(_config(tmp_path, fake, transport, port)),
        "--grace", "1", cwd=tmp_path, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    driver = SlackDriver(fake, transport, events_url=f"http://127.0.0.1:{port}/slack/events")
    err = ""
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):
            while "is running" not in err:
                line = await proc.stderr.readline()
                assert line, err
                err += line.decode()
        sent = await driver.slash("/imagine", "a moon over the sea --n 2", user=people[0], channel=channel)
        assert sent.acked.status == 200
        await fake.wait_until(lambda: len(fake.uploads) == 1, timeout=20)
        (card,) = fake.top_level(channel)
        assert fake.uploads[0].thread_ts == card.ts and len(fake.uploads[0].files) == 3
        await fake.wait_until(lambda: any(a.startswith("ib:r:") for a in card.action_ids()))
        reroll = next(a for a in card.action_ids() if a.startswith("ib:r:"))
        await driver.press(card, reroll, user=people[0])
        await fake.wait_until(lambda: len(fake.uploads) == 2, timeout=20)
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(30):
            rest = await proc.stderr.read()
        err += rest.decode()
        assert await proc.wait() == 0, err
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await driver.aclose()
    assert "Traceback" not in err
    assert fake.limiter.rejected == 0 and fake.spec.violations == []
    assert fake.bot_token not in err and fake.signing_secret not in err and fake.app_token not in err
