"""The job commands: ``/imagine`` and ``/cancel``.

Listeners acknowledge first (see :mod:`.listeners`); these run after. ``/imagine`` takes the same
text and flags as everywhere (``--ar 16:9 --n 2 ...``); with no text it opens the modal with the
advanced options. The modal's fields become the same flags, so styles, templates, defaults and
every validation message are the core's.
"""

from __future__ import annotations

from typing import Any

from adapters.slack import actions
from adapters.slack.context import SlackContext
from adapters.slack.reply import via_response_url
from adapters.slack.text import plain
from bot import messages
from bot.errors import InvalidRequest, UserFacingError
from bot.jobs import Job, Origin

#: Modal fields and slash-command options as the prompt flags the core parses.
FLAGS = {"negative": "--no", "aspect": "--ar", "count": "--n", "seed": "--seed", "style": "--style",
         "provider": "--provider"}


def prompt_with_options(prompt: str, **options: str | int | None) -> str:
    """The prompt with options as flags (``--no``, ``--ar`` ...), for the core to parse."""
    parts = [prompt]
    for name, value in options.items():
        if value is not None and value != "":
            parts += [FLAGS[name], str(value)]
    return " ".join(parts)


async def command_origin(ctx: SlackContext, command: dict[str, Any]) -> Origin:
    return await ctx.identity.origin(
        team_id=str(command.get("team_id") or ctx.team_id), channel_id=str(command["channel_id"]),
        user_id=str(command["user_id"]), user_name=str(command.get("user_name") or ""),
    )


async def imagine(ctx: SlackContext, command: dict[str, Any]) -> None:
    """``/imagine TEXT``: a placeholder card, then the job (or a private refusal)."""
    origin = await command_origin(ctx, command)
    text = plain(str(command.get("text") or "")).strip()
    reply = via_response_url(ctx.session, str(command["response_url"]))

    async def submit(refs: dict[str, str]) -> list[Job]:
        return await ctx.service.submit(text, origin, refs=refs)

    await actions.submit_flow(ctx, origin.channel_id, reply, submit)


async def cancel(ctx: SlackContext, command: dict[str, Any]) -> None:
    """``/cancel [job]``: cancel a job, by default the user's newest unfinished one."""
    origin = await command_origin(ctx, command)
    reply = via_response_url(ctx.session, str(command["response_url"]))
    words = plain(str(command.get("text") or "")).split()
    try:
        if words:
            job_id = words[0].strip("`").lower()
        else:
            entries = await ctx.service.my_queue(origin)
            if not entries:
                raise InvalidRequest(messages.NOTHING_QUEUED)
            job_id = max(entries, key=lambda e: (e.job.created_at, e.job.id)).job.id
        text = await actions.job_action(ctx, "c", job_id, origin)
    except UserFacingError as exc:
        text = exc.message
    await reply(text)
