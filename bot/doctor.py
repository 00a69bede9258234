"""``imaginebot doctor``: check a setup and say how to fix each problem.

Each check returns :class:`Finding` rows (ok, warn or error) with the fix spelled out. Checks
that need the network (Discord, Slack, providers) talk to the configured base URLs with plain
aiohttp and a short timeout; a secret is never printed, only its shape is described.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import aiohttp

from bot.clock import SystemClock
from bot.config import Config, DiscordConfig, SlackConfig, WebConfig, load_config
from bot.errors import ConfigError
from bot.generation import Provider

Level = Literal["ok", "warn", "error"]
TIMEOUT = aiohttp.ClientTimeout(total=10)
DISCORD_API = "https://discord.com/api/v10"
SLACK_API = "https://slack.com/api/"
#: View channel, send messages (also in threads), embed links, attach files, read history,
#: add reactions, create public threads: what the bot needs in a channel.
DISCORD_PERMISSIONS = {
    "View Channel": 1 << 10, "Send Messages": 1 << 11, "Embed Links": 1 << 14, "Attach Files": 1 << 15,
    "Read Message History": 1 << 16, "Add Reactions": 1 << 6, "Create Public Threads": 1 << 35,
    "Send Messages in Threads": 1 << 38,
}
#: commands and chat:write for cards, files:write for results, reactions:read and the history
#: scopes to act on reactions to old messages, users:read for admin checks, im:write for DMs.
SLACK_SCOPES = (
    "commands", "chat:write", "files:write", "reactions:read", "channels:history", "groups:history",
    "users:read", "im:write",
)
_DISCORD_TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
MIN_FREE_BYTES = 1 << 30


@dataclass(frozen=True, slots=True)
class Finding:
    level: Level
    topic: str
    what: str
    fix: str = ""


async def run_doctor(config_path: Path | None) -> list[Finding]:
    """Every check, in the order a person would fix things."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        return [Finding("error", "config", str(exc), "Fix the keys named above (see config.example.toml).")]
    findings = [Finding("ok", "config", f"{config_path or 'built-in defaults'} is valid")]
    findings += check_storage(config)
    findings += check_web(config.web, slack_http=config.slack.bot_token is not None and config.slack.app_token is None)
    findings += check_routing(config)
    async with aiohttp.ClientSession(timeout=TIMEOUT) as http:
        findings += await check_discord(config.discord, http)
        findings += await check_slack(config.slack, http)
    findings += await check_providers(config)
    return findings


def format_findings(findings: list[Finding]) -> str:
    marks = {"ok": "ok   ", "warn": "WARN ", "error": "ERROR"}
    lines = []
    for f in findings:
        lines.append(f"{marks[f.level]} [{f.topic}] {f.what}")
        if f.fix:
            lines.append(f"      fix: {f.fix}")
    errors = sum(f.level == "error" for f in findings)
    warnings = sum(f.level == "warn" for f in findings)
    lines.append(f"{errors} problem(s), {warnings} warning(s)")
    return "\n".join(lines)


# --- local checks ------------------------------------------------------------------------------
def check_storage(config: Config) -> list[Finding]:
    root = config.storage.dir.resolve()
    probe = root if root.exists() else next((p for p in root.parents if p.exists()), Path("/"))
    if not _writable(probe):
        return [Finding("error", "storage", f"{root} is not writable",
                        "Point [storage] dir at a folder the bot's user can write, or fix its permissions.")]
    free = shutil.disk_usage(probe).free
    if free < MIN_FREE_BYTES:
        return [Finding("warn", "storage", f"only {free // (1 << 20)} MiB free under {root}",
                        "Free some space or move [storage] dir: images and the database grow with use.")]
    return [Finding("ok", "storage", f"{root} is writable, {free // (1 << 30)} GiB free")]


def _writable(path: Path) -> bool:
    try:
        probe = path / ".imaginebot-doctor"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def check_web(web: WebConfig, *, slack_http: bool) -> list[Finding]:
    if not web.enabled:
        if slack_http:
            return [Finding("error", "web", "Slack without an app token needs the web server for /slack/events",
                            "Set [web] enabled = true, or give [slack] app_token to use Socket Mode.")]
        return [Finding("ok", "web", "the web playground is turned off")]
    findings = []
    if not _port_free(web.host, web.port):
        findings.append(Finding("error", "web", f"{web.host}:{web.port} is already in use",
                                "Stop whatever uses it, or set another [web] port."))
    if web.host in ("0.0.0.0", "::") and not web.public_url:
        findings.append(Finding("warn", "web", f"the web server listens on every address ({web.host})",
                                "Keep 127.0.0.1 behind a reverse proxy with TLS, and set [web] public_url."))
    if slack_http and web.host in ("127.0.0.1", "localhost", "::1") and not web.public_url:
        findings.append(Finding("error", "slack", "Slack cannot reach /slack/events on 127.0.0.1",
                                "Use Socket Mode ([slack] app_token = \"xapp-...\"), or publish the web server over "
                                "HTTPS and set [web] public_url."))
    return findings or [Finding("ok", "web", f"http://{web.host}:{web.port} is free to use")]


def _port_free(host: str, port: int) -> bool:
    if port == 0:
        return True
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
        return True
    except OSError:
        return False


def check_routing(config: Config) -> list[Finding]:
    default = config.routing.default
    kind = config.providers[default].get("type")
    others = [n for n, s in config.providers.items() if s.get("type") != "sketch"]
    if kind == "sketch" and others:
        return [Finding("warn", "routing", f"the default provider '{default}' is the offline preview (no model)",
                        f"Set [routing] default to one of: {', '.join(others)}.")]
    return [Finding("ok", "routing", f"default provider: {default}")]


# --- Discord -----------------------------------------------------------------------------------
def discord_token_shape(token: str) -> str | None:
    """What is wrong with how a Discord bot token looks, or None."""
    if token != token.strip() or token.startswith(("'", '"')):
        return "the token has spaces or quotes around it"
    if token.lower().startswith("bot "):
        return 'the token starts with "Bot ": paste only the token, the bot adds the prefix itself'
    if token.isdigit():
        return "that is an application id, not a bot token"
    if re.fullmatch(r"[A-Za-z0-9_-]{32}", token):
        return "that looks like the OAuth2 client secret, not the bot token"
    if not _DISCORD_TOKEN.match(token):
        return "it does not look like a bot token (three parts separated by dots)"
    return None


async def check_discord(discord: DiscordConfig, http: aiohttp.ClientSession) -> list[Finding]:
    if discord.token is None:
        return []
    token = discord.token.get_secret_value()
    problem = discord_token_shape(token)
    fix = "Developer Portal > your app > Bot > Reset Token, and put it in the environment variable you use."
    if problem:
        return [Finding("error", "discord", problem, fix)]
    base = (discord.api_base_url or DISCORD_API).rstrip("/")
    headers = {"Authorization": f"Bot {token}"}
    try:
        async with http.get(f"{base}/users/@me", headers=headers) as resp:
            if resp.status == 401:
                return [Finding("error", "discord", "Discord rejected the token (401)", fix)]
            resp.raise_for_status()
            me = await resp.json()
        async with http.get(f"{base}/oauth2/applications/@me", headers=headers) as resp:
            resp.raise_for_status()
            application = await resp.json()
        async with http.get(f"{base}/users/@me/guilds", headers=headers) as resp:
            resp.raise_for_status()
            guilds = await resp.json()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return [Finding("error", "discord", f"cannot reach {base}: {type(exc).__name__}",
                        "Check the network, or [discord] api_base_url if you use a proxy.")]
    findings = [Finding("ok", "discord", f"logged in as {me.get('username', '?')}; only non-privileged intents "
                                         "are used, so none need enabling")]
    return findings + _discord_guild_findings(str(application.get("id", "")), guilds)


def _discord_guild_findings(app_id: str, guilds: list[dict[str, object]]) -> list[Finding]:
    invite = (f"https://discord.com/oauth2/authorize?client_id={app_id}&scope=bot+applications.commands"
              f"&permissions={sum(DISCORD_PERMISSIONS.values())}")
    if not guilds:
        return [Finding("warn", "discord", "the bot is in no server yet", f"Invite it: {invite}")]
    findings = []
    for guild in guilds:
        granted = int(str(guild.get("permissions", "0")))
        if granted & (1 << 3):  # Administrator grants everything
            continue
        missing = [name for name, bit in DISCORD_PERMISSIONS.items() if not granted & bit]
        if missing:
            name = guild.get("name", guild.get("id"))
            findings.append(Finding(
                "warn", "discord", f"in server '{name}' the bot lacks: {', '.join(missing)}",
                f"Give the bot's role those permissions, or re-invite it with {invite}"))
    return findings or [Finding("ok", "discord", f"the bot has what it needs in {len(guilds)} server(s)")]


# --- Slack -------------------------------------------------------------------------------------
def slack_token_problems(slack: SlackConfig) -> list[Finding]:
    findings = []
    fix_app = "api.slack.com/apps > your app > "
    bot = slack.bot_token.get_secret_value() if slack.bot_token else ""
    if bot.startswith("xoxp-"):
        findings.append(Finding("error", "slack", "[slack] bot_token is a user token (xoxp-)",
                                fix_app + "OAuth & Permissions > Bot User OAuth Token (xoxb-...)."))
    elif bot.startswith("xapp-"):
        findings.append(Finding("error", "slack", "[slack] bot_token is the app-level token (xapp-)",
                                "Put it in [slack] app_token, and the xoxb- token in bot_token."))
    elif not bot.startswith("xoxb-"):
        findings.append(Finding("error", "slack", "[slack] bot_token does not start with xoxb-",
                                fix_app + "OAuth & Permissions > Bot User OAuth Token."))
    app = slack.app_token.get_secret_value() if slack.app_token else None
    if app is not None and not app.startswith("xapp-"):
        findings.append(Finding("error", "slack", "[slack] app_token does not start with xapp-",
                                fix_app + "Basic Information > App-Level Tokens (scope connections:write)."))
    secret = slack.signing_secret.get_secret_value() if slack.signing_secret else None
    if secret is None and app is None:
        findings.append(Finding("error", "slack", "HTTP events need [slack] signing_secret",
                                fix_app + "Basic Information > Signing Secret."))
    elif secret is not None and not _HEX32.match(secret):
        findings.append(Finding("error", "slack", "[slack] signing_secret is not 32 hexadecimal characters",
                                fix_app + "Basic Information > Signing Secret (not the client secret or token)."))
    return findings


async def check_slack(slack: SlackConfig, http: aiohttp.ClientSession) -> list[Finding]:
    if slack.bot_token is None:
        return []
    problems = slack_token_problems(slack)
    if any(f.level == "error" and "bot_token" in f.what for f in problems):
        return problems
    base = slack.api_base_url or SLACK_API
    url = base.rstrip("/") + "/auth.test"
    try:
        async with http.post(url, headers={"Authorization": f"Bearer {slack.bot_token.get_secret_value()}"}) as resp:
            body = await resp.json(content_type=None)
            scopes = set(filter(None, resp.headers.get("x-oauth-scopes", "").split(",")))
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [*problems, Finding("error", "slack", f"cannot reach {base}: {type(exc).__name__}",
                                   "Check the network, or [slack] api_base_url if you use a proxy.")]
    if not body.get("ok"):
        return [*problems, Finding("error", "slack", f"Slack rejected the bot token ({body.get('error', '?')})",
                                   "Reinstall the app to the workspace and copy the new xoxb- token.")]
    missing = [s for s in SLACK_SCOPES if s not in scopes]
    if missing:
        problems.append(Finding("error", "slack", f"the bot token lacks scopes: {', '.join(missing)}",
                                "OAuth & Permissions > Bot Token Scopes: add them, then reinstall the app."))
    else:
        problems.append(Finding("ok", "slack", f"bot token works in team {body.get('team', '?')} with every scope"))
    return problems


# --- providers ----------------------------------------------------------------------------------
async def check_providers(config: Config) -> list[Finding]:
    from providers.registry import build_providers

    try:
        providers = build_providers(config.providers, clock=SystemClock())
    except ConfigError as exc:
        return [Finding("error", "providers", str(exc), "Fix the provider keys named above.")]
    async def one(name: str, provider: Provider) -> Finding:
        try:
            health = await asyncio.wait_for(provider.health(), timeout=10)
        except TimeoutError:
            return Finding("error", f"provider {name}", "no answer within 10 s",
                           "Check its base_url and that the server is running.")
        if health.ok:
            return Finding("ok", f"provider {name}", health.detail or "answers")
        return Finding("error", f"provider {name}", health.detail or "unavailable",
                       "Check its base_url, key and that the server is running.")

    results = list(await asyncio.gather(*(one(n, p) for n, p in providers.items())))
    for provider in providers.values():
        await provider.aclose()
    return results
