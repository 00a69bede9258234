"""``imaginebot doctor`` explains every mistake in this table, and prints the fix."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.doctor import Finding, format_findings, run_doctor
from tests.fakes.doctor_peers import GOOD_DISCORD_TOKEN, GOOD_SLACK_TOKEN, Peers

ROOT = Path(__file__).resolve().parents[2]
SIGNING = "0123456789abcdef0123456789abcdef"


@pytest.fixture
async def peers() -> AsyncIterator[tuple[Peers, str]]:
    fake = Peers()
    url = await fake.start()
    yield fake, url
    await fake.close()


def _write(tmp_path: Path, body: str, *, web: str = "port = 0") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'[storage]\ndir = "{tmp_path / "data"}"\n[web]\n{web}\n' + body)
    return path


def _discord(url: str, token: str) -> str:
    return f'[discord]\ntoken = "{token}"\napi_base_url = "{url}api/v10"\n'


def _slack(url: str, bot: str, *, app: str | None = None, signing: str | None = SIGNING) -> str:
    out = f'[slack]\nbot_token = "{bot}"\napi_base_url = "{url}api/"\n'
    if app:
        out += f'app_token = "{app}"\n'
    if signing:
        out += f'signing_secret = "{signing}"\n'
    return out


SKETCH = '[providers.sketch]\ntype = "sketch"\n'


def _cloud(base_url: str) -> str:
    return (f'[providers.cloud]\ntype = "openai"\napi_key = "sk-test-1234567890"\nmodel = "gpt-image-1-mini"\n'
            f'base_url = "{base_url}"\n')


MISTAKES = [
    # (what the admin got wrong, config body builder, topic, text in "what", text in "fix")
    ("misspelt key", lambda u: "[limits]\nper_user_per_minit = 3\n", "config", "per_user_per_minit", "config.example"),
    ("missing env var", lambda u: '[discord]\ntoken = "${NO_SUCH_TOKEN_VAR}"\n', "config", "NO_SUCH_TOKEN_VAR", ""),
    ("Bot prefix", lambda u: _discord(u, "Bot " + GOOD_DISCORD_TOKEN), "discord", 'starts with "Bot "', "Reset Token"),
    ("client secret", lambda u: _discord(u, "a" * 32), "discord", "client secret", "Bot > Reset Token"),
    ("application id", lambda u: _discord(u, "123456789012345678"), "discord", "application id", "Reset Token"),
    ("revoked token", lambda u: _discord(u, GOOD_DISCORD_TOKEN[:-2] + "zz"), "discord", "rejected the token", "Reset"),
    ("user token", lambda u: _slack(u, "xoxp-1-2-3"), "slack", "user token (xoxp-)", "Bot User OAuth Token"),
    ("app token as bot", lambda u: _slack(u, "xapp-1-2"), "slack", "app-level token", "app_token"),
    ("bad app token", lambda u: _slack(u, GOOD_SLACK_TOKEN, app="xoxb-9"), "slack", "app_token", "App-Level Tokens"),
    ("bad signing", lambda u: _slack(u, GOOD_SLACK_TOKEN, signing="secret"), "slack", "signing_secret", "Signing"),
    ("no signing, no socket", lambda u: _slack(u, GOOD_SLACK_TOKEN, signing=None),
     "slack", "signing_secret", "Signing"),
    ("http events on localhost", lambda u: _slack(u, GOOD_SLACK_TOKEN),
     "slack", "cannot reach /slack/events", "Socket Mode"),
    ("wrong slack token", lambda u: _slack(u, "xoxb-0-0-wrong", app="xapp-1"), "slack", "invalid_auth", "Reinstall"),
    ("sketch default beside real", lambda u: SKETCH + _cloud(f"{u}v1"), "routing", "offline preview",
     "[routing] default"),
    ("provider unreachable", lambda u: SKETCH + _cloud("http://127.0.0.1:9/v1"), "provider cloud", "", "base_url"),
]


@pytest.mark.parametrize(("case", "body", "topic", "what", "fix"), MISTAKES, ids=[m[0] for m in MISTAKES])
async def test_every_mistake_is_explained_with_its_fix(
    tmp_path: Path, peers: tuple[Peers, str], case: str, body, topic: str, what: str, fix: str  # type: ignore[no-untyped-def]
) -> None:
    _, url = peers
    findings = await run_doctor(_write(tmp_path, body(url)))
    hits = [f for f in findings if f.level == "error" or (f.level == "warn" and f.topic == topic)]
    match = [f for f in hits if f.topic.startswith(topic) and what in f.what and fix in f.fix]
    assert match, format_findings(findings)


async def test_slack_http_events_with_the_web_server_off(tmp_path: Path, peers: tuple[Peers, str]) -> None:
    _, url = peers
    findings = await run_doctor(_write(tmp_path, _slack(url, GOOD_SLACK_TOKEN), web="enabled = false"))
    assert any(f.level == "error" and "/slack/events" in f.what and "app_token" in f.fix for f in findings)


async def test_missing_permissions_are_named_and_an_invite_link_given(tmp_path: Path, peers: tuple[Peers, str]) -> None:
    fake, url = peers
    fake.guild_permissions = [(1 << 10) | (1 << 11)]  # can see and talk, nothing else
    findings = await run_doctor(_write(tmp_path, _discord(url, GOOD_DISCORD_TOKEN)))
    [warn] = [f for f in findings if f.level == "warn" and f.topic == "discord"]
    assert "Attach Files" in warn.what and "Create Public Threads" in warn.what
    assert "client_id=4242" in warn.fix and "applications.commands" in warn.fix


async def test_missing_slack_scopes_are_listed(tmp_path: Path, peers: tuple[Peers, str]) -> None:
    fake, url = peers
    fake.slack_scopes = ["commands", "chat:write"]
    findings = await run_doctor(_write(tmp_path, _slack(url, GOOD_SLACK_TOKEN, app="xapp-1-2")))
    [err] = [f for f in findings if f.level == "error" and f.topic == "slack"]
    assert "files:write" in err.what and "reactions:read" in err.what and "reinstall" in err.fix


async def test_a_good_setup_has_no_problems_and_never_prints_a_secret(tmp_path: Path, peers: tuple[Peers, str]) -> None:
    _, url = peers
    body = _discord(url, GOOD_DISCORD_TOKEN) + _slack(url, GOOD_SLACK_TOKEN, app="xapp-1-2")
    findings = await run_doctor(_write(tmp_path, body))
    assert [f for f in findings if f.level != "ok"] == [], format_findings(findings)
    text = format_findings(findings)
    assert GOOD_DISCORD_TOKEN not in text and GOOD_SLACK_TOKEN not in text and SIGNING not in text
    assert "logged in as imaginebot" in text and "every scope" in text


def test_doctor_command_exits_1_on_problems_and_0_when_clean(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    bad = _write(tmp_path, "[limits]\nburst = 0\n")
    out = subprocess.run([sys.executable, "-m", "bot.cli", "doctor", "--config", str(bad)],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 1 and "limits.burst" in out.stdout and "fix:" in out.stdout
    good = subprocess.run([sys.executable, "-m", "bot.cli", "doctor", "--config", str(_write(tmp_path, ""))],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert good.returncode == 0 and "0 problem(s)" in good.stdout, good.stdout + good.stderr


def test_findings_format_marks_levels() -> None:
    text = format_findings([Finding("ok", "a", "fine"), Finding("error", "b", "broken", "do this")])
    assert "ERROR [b] broken" in text and "fix: do this" in text and "1 problem(s), 0 warning(s)" in text
