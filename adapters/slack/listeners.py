"""Every bolt listener, in one place: each acknowledges first, then hands its work to a task.

Slack needs the ack within 3 s. Commands ack with a short private "queuing" text where that helps;
events are acknowledged by bolt itself. The work (identity, the service, answers) runs in
:meth:`~adapters.slack.context.SlackContext.spawn` tasks, so no listener holds its request open.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from adapters.slack import actions, browse, commands, home, modal, reactions
from adapters.slack.buttons import ACTION_RE, OPEN_MODAL, PAGE_RE
from adapters.slack.context import SlackContext
from adapters.slack.dedup import EventDeduplication
from adapters.slack.reply import via_ephemeral, via_response_url
from adapters.slack.text import plain
from bot import messages
from bot.jobs import Origin

CommandWork = Callable[[SlackContext, dict[str, Any]], Coroutine[Any, Any, None]]
#: Slash commands and what they do after the ack.
COMMANDS: dict[str, CommandWork] = {
    "/cancel": commands.cancel,
    "/gallery": browse.gallery,
    "/history": browse.history,
    "/queue": browse.queue,
    "/settings": browse.settings,
}


def register(bolt: AsyncApp, ctx: SlackContext) -> EventDeduplication:
    """Add the middleware and every listener to ``bolt``; returns the de-duplication middleware."""
    dedup = EventDeduplication()
    bolt.use(dedup)
    _commands(bolt, ctx)
    _interactivity(bolt, ctx)
    _events(bolt, ctx)
    return dedup


def _commands(bolt: AsyncApp, ctx: SlackContext) -> None:
    async def imagine(ack: AsyncAck, command: dict[str, Any]) -> None:
        if not plain(str(command.get("text") or "")).strip():
            await ack()
            ctx.spawn(_open_modal(ctx, command), name="/imagine modal", fail=_failed_command(ctx, command))
            return
        await ack(messages.SUBMITTING)
        ctx.spawn(commands.imagine(ctx, command), name="/imagine", fail=_failed_command(ctx, command))

    bolt.command("/imagine")(imagine)
    for name, work in COMMANDS.items():
        bolt.command(name)(_command(ctx, name, work))


def _command(ctx: SlackContext, name: str, work: CommandWork) -> Callable[..., Awaitable[None]]:
    async def listener(ack: AsyncAck, command: dict[str, Any]) -> None:
        await ack()
        ctx.spawn(work(ctx, command), name=name, fail=_failed_command(ctx, command))

    return listener


def _interactivity(bolt: AsyncApp, ctx: SlackContext) -> None:
    async def job_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        ctx.spawn(actions.on_button(ctx, body), name="button", fail=_failed_interaction(ctx, body))

    async def page_button(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        ctx.spawn(browse.on_page(ctx, body), name="page", fail=_failed_interaction(ctx, body))

    async def link_button(ack: AsyncAck) -> None:
        await ack()  # a URL button: Slack opens the link, and still tells the app

    async def open_modal(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        ctx.spawn(_open_modal_from(ctx, body), name="modal")

    async def submit_modal(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()  # closes the modal; refusals arrive as ephemeral messages in the chosen channel
        ctx.spawn(modal.on_submit(ctx, body), name="modal submit")

    bolt.action(ACTION_RE)(job_button)
    bolt.action(PAGE_RE)(page_button)
    bolt.action(re.compile(r"^ibl:"))(link_button)
    bolt.action(OPEN_MODAL)(open_modal)
    bolt.shortcut(modal.SHORTCUT_ID)(open_modal)
    bolt.view(modal.CALLBACK_ID)(submit_modal)


def _events(bolt: AsyncApp, ctx: SlackContext) -> None:
    # Bolt acknowledges events before running their listeners.
    async def reaction_added(body: dict[str, Any], event: dict[str, Any]) -> None:
        ctx.spawn(reactions.on_reaction(ctx, body, event), name="reaction")

    async def app_home_opened(body: dict[str, Any], event: dict[str, Any]) -> None:
        ctx.spawn(home.on_home_opened(ctx, body, event), name="home")

    bolt.event("reaction_added")(reaction_added)
    bolt.event("app_home_opened")(app_home_opened)


# --- opening the modal -----------------------------------------------------------------------------
async def _open_modal(ctx: SlackContext, command: dict[str, Any]) -> None:
    origin = await commands.command_origin(ctx, command)
    await modal.open_modal(ctx, str(command["trigger_id"]), origin, origin.channel_id)


async def _open_modal_from(ctx: SlackContext, body: dict[str, Any]) -> None:
    user = body.get("user") or {}
    team = str((body.get("team") or {}).get("id") or ctx.team_id)
    channel = (body.get("channel") or {}).get("id")
    origin = Origin(platform="slack", server_id=team, channel_id=str(channel or ""), user_id=str(user.get("id")))
    await modal.open_modal(ctx, str(body["trigger_id"]), origin, str(channel) if channel else None)


# --- when the work fails unexpectedly ------------------------------------------------------------
def _failed_command(ctx: SlackContext, command: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    async def tell() -> None:
        await via_response_url(ctx.session, str(command["response_url"]))(messages.SOMETHING_WENT_WRONG)

    return tell


def _failed_interaction(ctx: SlackContext, body: dict[str, Any]) -> Callable[[], Awaitable[None]]:
    async def tell() -> None:
        url = body.get("response_url")
        channel = (body.get("channel") or {}).get("id")
        user = str((body.get("user") or {}).get("id") or "")
        if isinstance(url, str) and url:
            await via_response_url(ctx.session, url)(messages.SOMETHING_WENT_WRONG)
        elif channel and user:
            await via_ephemeral(ctx.client, str(channel), user)(messages.SOMETHING_WENT_WRONG)

    return tell
