"""What buttons and reactions do, and the one flow every new job follows.

Listeners acknowledge first; these helpers run after. A new job (:func:`submit_flow`) starts with
a placeholder posted in the channel with ``chat.postMessage``, which becomes the job's card; the
service queues the job; a refusal deletes the placeholder and explains privately. Rules
(ownership, limits) are the service's.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError

from adapters.slack import blocks
from adapters.slack.buttons import NEW_JOB_ACTIONS, parse_action_id
from adapters.slack.context import SlackContext
from adapters.slack.reply import Reply, via_response_url
from adapters.slack.surface import card_channel, card_ts, slack_error
from bot import messages
from bot.errors import UserFacingError
from bot.jobs import Job, JobStatus, Origin

log = logging.getLogger(__name__)

Submit = Callable[[dict[str, str]], Awaitable[list[Job]]]
#: Errors of chat.postMessage that mean the bot may not post in the channel at all.
CANNOT_POST = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})


# --- new jobs --------------------------------------------------------------------------------------
async def submit_flow(ctx: SlackContext, channel: str, reply: Reply, submit: Submit) -> list[Job]:
    """Placeholder card, queue the job(s), or explain privately why not."""
    text, layout = blocks.placeholder()
    try:
        ts = await ctx.surface.post(channel, text, layout)
    except SlackApiError as exc:
        if slack_error(exc) not in CANNOT_POST:
            raise
        await reply(messages.CANNOT_POST_HERE)
        return []
    try:
        jobs = await submit({"channel": channel, "reply": ts})
    except UserFacingError as exc:
        await ctx.surface.delete(channel, ts)
        await reply(exc.message)
        return []
    if len(jobs) == 1:
        ctx.index.remember(channel, ts, jobs[0].id)
    else:
        # A batch's jobs post cards of their own; the placeholder has nothing left to show.
        await ctx.surface.delete(channel, ts)
        await reply(messages.queued_batch(len(jobs)))
    return jobs


async def new_job(
    ctx: SlackContext, action: str, job_id: str, n: int | None, origin: Origin, refs: dict[str, str]
) -> list[Job]:
    """U (upscale image n), V (vary image n), reroll or run again, as the service's new job."""
    return [await ctx.service.follow_up(action, job_id, n, origin, refs=refs)]


# --- actions on a job ------------------------------------------------------------------------------
async def job_action(ctx: SlackContext, action: str, job_id: str, origin: Origin) -> str:
    """Cancel, delete or favourite; returns the sentence to show."""
    if action == "c":
        job = await ctx.service.cancel(job_id, origin)
        return messages.cancelled_job(job.id)
    if action == "d":
        job = await ctx.service.delete(job_id, origin)
        await remove_messages(ctx, job)
        return messages.DELETED
    await favourite_all(ctx, job_id, origin)
    return messages.FAVOURITED


async def favourite_all(ctx: SlackContext, job_id: str, origin: Origin) -> None:
    await ctx.service.favourite_job(job_id, origin)


async def remove_messages(ctx: SlackContext, job: Job) -> None:
    """Delete a deleted job's card and its uploaded files (best effort: they may be gone)."""
    ts = card_ts(job)
    if ts is not None:
        await ctx.surface.delete(card_channel(job), ts)
    files = [f for f in job.message_refs.get("files", "").split(",") if f]
    await ctx.surface.delete_files(files)


async def dm_images(ctx: SlackContext, job_id: str, origin: Origin) -> str | None:
    """Send the job's full-size images and parameters to the user privately; None when sent."""
    job = await ctx.service.job(job_id, origin)
    if job.status is not JobStatus.SUCCEEDED:
        return messages.JOB_NOT_FINISHED
    delivery = await ctx.service.delivery_for(job.id, origin, ctx.surface)
    singles = [f for f in delivery.files if not f.filename.startswith(f"{job.id}-grid")] or delivery.files
    try:
        opened = await ctx.client.conversations_open(users=origin.user_id)
        channel = str(opened["channel"]["id"])
        comment = blocks.result_comment(job, delivery.images, None)
        await ctx.surface.upload(channel, singles, job, comment)
    except SlackApiError as exc:
        log.info("could not DM images to %s (%s)", origin.user_id, slack_error(exc))
        return messages.DM_FAILED
    return None


# --- buttons ---------------------------------------------------------------------------------------
async def on_button(ctx: SlackContext, body: dict[str, Any]) -> None:
    """A press of one of our job buttons (see :mod:`.buttons`), after its ack."""
    action = (body.get("actions") or [{}])[0]
    parsed = parse_action_id(str(action.get("action_id", "")))
    if parsed is None:
        return
    code, job_id, n = parsed
    channel = _channel_of(body)
    origin = await ctx.identity.origin(
        team_id=_team_of(body, ctx), channel_id=channel or "", user_id=str(body["user"]["id"]),
        user_name=str(body["user"].get("username") or body["user"].get("name") or ""),
        thread_id=(body.get("container") or {}).get("thread_ts"),
    )
    reply = reply_for(ctx, body, origin)
    try:
        if code in NEW_JOB_ACTIONS:
            if channel is None:  # a button outside any channel (the App Home): the job's own channel
                channel = (await ctx.service.job(job_id, origin)).origin.channel_id
            await submit_flow(ctx, channel, reply, lambda refs: new_job(ctx, code, job_id, n, origin, refs))
            return
        text = await job_action(ctx, code, job_id, origin)
    except UserFacingError as exc:
        text = exc.message
    await reply(text)


def reply_for(ctx: SlackContext, body: dict[str, Any], origin: Origin) -> Reply:
    """How to answer an interaction privately: its response_url, else ephemeral messages."""
    url = body.get("response_url")
    if isinstance(url, str) and url:
        return via_response_url(ctx.session, url)
    from adapters.slack.home import home_reply  # home imports this module (through browse and commands)

    return home_reply(ctx, origin)


def _channel_of(body: dict[str, Any]) -> str | None:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    return str(channel) if channel else None


def _team_of(body: dict[str, Any], ctx: SlackContext) -> str:
    team = (body.get("team") or {}).get("id") or (body.get("user") or {}).get("team_id")
    return str(team or ctx.team_id)
