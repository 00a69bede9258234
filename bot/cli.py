"""The ``imaginebot`` command: ``run``, ``generate``, ``providers``, ``doctor`` and ``audit``.

``main`` is the composition root's entry point; surfaces (adapters) are imported here, lazily,
only when their config section asks for them, so the core never depends on a platform SDK.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import importlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from bot import messages
from bot.app import App, build_app
from bot.clock import SystemClock
from bot.config import Config, load_config
from bot.doctor import format_findings, run_doctor
from bot.errors import ConfigError, UserFacingError
from bot.jobs import Origin
from bot.logs import secrets_in, setup_logging
from bot.terminal import TerminalSurface

log = logging.getLogger("imaginebot")

#: Surfaces ``run`` can start: (config section is set up?) -> "module:function(app) -> awaitable runner".
SURFACE_STARTERS = {
    "web": "adapters.web.server:start_web",
    "discord": "adapters.discord.bot:start_discord",
    "slack": "adapters.slack.app:start_slack",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    setup_logging(args.log_level, json_lines=args.log_json)
    if args.command == "doctor":
        findings = asyncio.run(run_doctor(args.config))
        print(format_findings(findings))
        return 1 if any(f.level == "error" for f in findings) else 0
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"imaginebot: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, json_lines=args.log_json, secrets=secrets_in(config))
    handler = {"run": _run, "generate": _generate, "providers": _providers, "audit": _audit}[args.command]
    try:
        return asyncio.run(handler(config, args))
    except ConfigError as exc:
        print(f"imaginebot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="imaginebot", description="Image generation for Discord, Slack and the web.")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument("--log-json", action="store_true", help="log one JSON object per line (for log collectors)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the configured surfaces and the queue until SIGINT/SIGTERM")
    run.add_argument("--config", type=Path, help="config file (default: built-in defaults)")
    run.add_argument("--grace", type=float, default=10.0, help="seconds running jobs get to finish on shutdown")

    gen = sub.add_parser("generate", help="make images from a prompt in the terminal")
    gen.add_argument("prompt", help='prompt text with flags, e.g. "a lighthouse at dusk --ar 16:9 --n 4"')
    gen.add_argument("--provider", help="provider alias from [providers.NAME]")
    gen.add_argument("--out", type=Path, default=Path("imaginebot-out"), help="folder for the images")
    gen.add_argument("--config", type=Path, help="config file")

    prov = sub.add_parser("providers", help="list providers, capabilities and health")
    prov.add_argument("--config", type=Path, help="config file")

    doctor = sub.add_parser("doctor", help="check the config, tokens, permissions and providers; print fixes")
    doctor.add_argument("--config", type=Path, help="config file")

    audit = sub.add_parser("audit", help="show a server's moderation audit log, newest first")
    audit.add_argument("--server", required=True, help="server id (Discord guild id, Slack team id, 'local' for web)")
    audit.add_argument("--platform", default="discord", help="discord, slack or web (default: discord)")
    audit.add_argument("--user", help="only this user id's rows")
    audit.add_argument("--limit", type=int, default=50, help="rows per page (default: 50)")
    audit.add_argument("--cursor", help="the page to show, as printed after the previous one")
    audit.add_argument("--config", type=Path, help="config file")
    return parser


# --- run ---------------------------------------------------------------------------------------
async def _run(config: Config, args: argparse.Namespace) -> int:
    app = await build_app(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runners = []
    try:
        for name in _surfaces_wanted(config):
            runners.append(await _start_surface(name, app))
        await app.start()
        log.info("imaginebot is running (%s); Ctrl+C to stop", ", ".join(app.surfaces) or "no surfaces")
        await stop.wait()
        log.info("stopping: finishing or re-queueing running jobs")
    finally:
        # Jobs first (their final cards still need the surfaces), then the surfaces, then storage.
        await app.drain(args.grace)
        for close in reversed(runners):
            try:
                await close()
            except Exception:
                log.exception("closing a surface failed")
        await app.stop(args.grace)
    return 0


def _surfaces_wanted(config: Config) -> list[str]:
    wanted = []
    if config.web.enabled:
        wanted.append("web")
    if config.discord.token is not None:
        wanted.append("discord")
    if config.slack.bot_token is not None:
        wanted.append("slack")
    return wanted


async def _start_surface(name: str, app: App) -> Callable[[], Awaitable[None]]:
    module_name, _, func_name = SURFACE_STARTERS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError:
        log.warning("the %s surface is not available in this version", name)

        async def nothing() -> None:
            return None

        return nothing
    close: Callable[[], Awaitable[None]] = await getattr(module, func_name)(app)
    return close


# --- generate ----------------------------------------------------------------------------------
async def _generate(config: Config, args: argparse.Namespace) -> int:
    app = await build_app(config)
    surface = TerminalSurface(args.out)
    app.add_surface(surface)
    origin = Origin(
        platform="cli", server_id="local", channel_id="terminal", user_id=getpass.getuser(),
        user_name=getpass.getuser(), is_admin=True,
    )
    text = args.prompt if not args.provider else f"{args.prompt} --provider {args.provider}"
    try:
        await app.start()
        try:
            jobs = await app.service.submit(text, origin)
        except UserFacingError as exc:
            print(f"imaginebot: {exc.message}", file=sys.stderr)
            return 1
        cost = sum(app.service.estimated_cost(job) for job in jobs)
        if cost > 0:
            print(f"imaginebot: {messages.cost_estimate(cost)}", file=sys.stderr)
        for job in jobs:
            await surface.done_event(job.id).wait()
    finally:
        await app.stop(grace_seconds=0)
    failed = 0
    for job in jobs:
        if job.id in surface.errors:
            failed += 1
            print(f"{job.id}: {surface.errors[job.id]}", file=sys.stderr)
        for path in surface.saved.get(job.id, []):
            print(path)
    return 1 if failed else 0


# --- audit -------------------------------------------------------------------------------------
async def _audit(config: Config, args: argparse.Namespace) -> int:
    """Read the audit log straight from storage: no providers, no surfaces, no credentials."""
    from storage.sqlite import SqliteStorage

    path = config.storage.dir / "imaginebot.db"
    if not path.exists():
        print(f"imaginebot: there is no database at {path}", file=sys.stderr)
        return 1
    storage = SqliteStorage(path)
    await storage.open()
    try:
        page = await storage.audit_log(
            args.platform, args.server, cursor=args.cursor, limit=max(1, args.limit), user_id=args.user
        )
    except UserFacingError as exc:
        print(f"imaginebot: {exc.message}", file=sys.stderr)
        return 1
    finally:
        await storage.close()
    if not page.items:
        print(messages.NO_AUDIT)
    for entry in page.items:
        when = datetime.fromtimestamp(entry.at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        who = f"{entry.user_name} ({entry.user_id})" if entry.user_name else entry.user_id
        line = f"{messages.audit_line(entry.action.value, entry.rule, entry.term)} · {who} · #{entry.channel_id}"
        job = f" · job {entry.job_id}" if entry.job_id else ""
        print(f"{when}  {line}{job}\n    {entry.prompt}" if entry.prompt else f"{when}  {line}{job}")
    if page.next_cursor is not None:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)
    return 0


# --- providers ---------------------------------------------------------------------------------
async def _providers(config: Config, args: argparse.Namespace) -> int:
    from providers.registry import build_providers

    providers = build_providers(config.providers, clock=SystemClock())
    print(f"{'name':<14} {'type':<10} {'model':<20} {'health':<8} capabilities")
    for name, provider in providers.items():
        try:
            health = await asyncio.wait_for(provider.health(), timeout=10)
            status, detail = ("ok" if health.ok else "down"), health.detail
        except TimeoutError:
            status, detail = "down", "no answer within 10 s"
        caps = provider.capabilities
        flags = [k for k in ("negative_prompt", "seed", "image_input", "variation", "upscale", "live_previews")
                 if getattr(caps, k)]
        ratios = "any ratio" if caps.aspect_ratios is None else "ratios " + ",".join(sorted(caps.aspect_ratios))
        marker = " (default)" if name == config.routing.default else ""
        print(f"{name + marker:<14} {provider.type_name:<10} {provider.model:<20} {status:<8} "
              f"up to {caps.max_images_per_call}/call, {ratios}, {', '.join(flags)}")
        if detail:
            print(f"{'':<14} {detail}")
        await provider.aclose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
