"""Every sentence imaginebot says to a user, in one place so wording stays consistent.

Surfaces format these for their platform; they never invent their own wording for core states.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from bot.jobs import Job, JobStatus
from bot.request import JobKind
from bot.surface import Card


def when(retry_at: float | None, now: float) -> str:
    """"in 12 s", "in 3 min", "at 00:00 UTC" for a retry time."""
    if retry_at is None:
        return "later"
    wait = max(0.0, retry_at - now)
    if wait < 90:
        return f"in {max(1, math.ceil(wait))} s"
    if wait < 3600:
        return f"in {math.ceil(wait / 60)} min"
    return "at " + datetime.fromtimestamp(retry_at, UTC).strftime("%H:%M UTC")


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


# --- job card states -----------------------------------------------------------------------
def queued(position: int | None, eta_seconds: float | None) -> str:
    if position is None:
        return "Queued."
    eta = f", about {duration(eta_seconds)}" if eta_seconds is not None else ""
    return f"Queued: #{position} in line{eta}."


def running(fraction: float | None, step_text: str) -> str:
    pct = f" {round(100 * fraction)} %" if fraction is not None else ""
    detail = f" ({step_text})" if step_text else ""
    return f"Drawing...{pct}{detail}"


def job_title(job: Job) -> str:
    """How a result is titled: the prompt, marked when it is a variation or an upscale."""
    request = job.request
    if request.kind is JobKind.VARIATION and request.source_image_index is not None:
        return f"Variation of image {request.source_image_index + 1}: {request.prompt}"
    if request.kind is JobKind.UPSCALE and request.source_image_index is not None:
        return f"Upscale of image {request.source_image_index + 1}: {request.prompt}"
    return request.prompt


def run_seconds(job: Job) -> float | None:
    """How long a finished job ran, for "Done in ..."."""
    if job.started_at is None or job.finished_at is None:
        return None
    return max(0.0, job.finished_at - job.started_at)


def card_status(card: Card) -> str:
    """The one-line state of a job's card, as every chat surface shows it."""
    job = card.job
    if card.status is JobStatus.QUEUED:
        return queued(card.position, card.eta_seconds)
    if card.status is JobStatus.RUNNING:
        return running(card.fraction, card.step_text)
    if card.status is JobStatus.SUCCEEDED:
        return finished(run_seconds(job), card.served_by, job.provider)
    if card.status is JobStatus.CANCELLED:
        return card.error or CANCELLED
    return failed(card.error or job.error or "unknown error")


def finished(seconds: float | None, served_by: str | None, asked_for: str) -> str:
    took = f" in {duration(seconds)}" if seconds is not None else ""
    fallback = f" by {served_by} (fallback: {asked_for} was unavailable)" if served_by else ""
    return f"Done{took}{fallback}."


CANCELLED = "Cancelled."
CANCELLED_BY_SHUTDOWN = "The bot is restarting; this job will continue when it is back."


def failed(reason: str) -> str:
    return f"Failed: {reason}"


# --- failures, as users see them ------------------------------------------------------------
def provider_refused(provider: str, reason: str) -> str:
    why = f": {reason}" if reason else ""
    return f"{provider} refused this prompt{why}. Try rewording it."


def provider_down(provider: str, tried: list[str]) -> str:
    if len(tried) > 1:
        return f"{provider} and the fallbacks ({', '.join(tried[1:])}) are unavailable right now. Try again soon."
    return f"{provider} is unavailable right now. Try again soon."


def provider_quota(provider: str) -> str:
    return f"{provider} has run out of credit or quota; a server admin has to top it up."


def provider_bad_request(provider: str, detail: str) -> str:
    return f"{provider} could not take these settings ({detail})."


def timed_out(seconds: float) -> str:
    return f"it took longer than {duration(seconds)}, so it was stopped."


def gave_up(attempts: int, last: str) -> str:
    return f"gave up after {attempts} attempts ({last})."


# --- storage trouble (a full or read-only disk) ------------------------------------------------
STORAGE_UNAVAILABLE = (
    "I can't save anything right now: the bot's storage is full or read-only. "
    "The admins can see why in the log; please try again later."
)
#: Why a running job's attempt failed when its images could not be saved.
IMAGES_NOT_SAVED = "its images could not be saved: the bot's storage is full or read-only"


# --- actions ---------------------------------------------------------------------------------
NOT_YOUR_JOB = "Only the person who made this (or a server admin) can do that."
JOB_NOT_FOUND = "I can't find that job. It may have been deleted."
IMAGE_NOT_FOUND = "That job has no image with that number."
JOB_NOT_FINISHED = "That job has not finished yet."
ALREADY_FINISHED = "That job has already finished."
ADMIN_ONLY = "Only a server admin can change that."


def capability_missing(provider: str, what: str) -> str:
    return f"{provider} can't do {what}. Pick another provider with --provider."


def channel_not_allowed(allowed: list[str]) -> str:
    return f"Image commands are not enabled in this channel. Try one of: {', '.join(allowed[:5])}."


# --- moderation: refusals name the rule and suggest a rewrite -------------------------------------
_RULE_NAMES = {"blocked_word": "blocked word", "blocked_pattern": "blocked pattern"}
AUDIT_ADMIN_ONLY = "Only a server admin can read the moderation log."
FLAGGED_NOTE = "Flagged as sensitive: the images stay hidden until you click them."
NO_AUDIT = "The moderation log is empty."


def content_blocked(rule: str, matched: str, suggestion: str | None, *, admin: bool) -> str:
    """A blocked word or pattern: 'This server blocks "gore" (blocked word). Try: "a battle scene".'"""
    return f'This server blocks "{_quoted(matched)}" ({_RULE_NAMES.get(rule, rule)}).{_try(suggestion, admin)}'


def nsfw_not_here(matched: str, policy: str, marked_channels: bool, suggestion: str | None, *, admin: bool) -> str:
    """An NSFW term outside the channels that allow it, with where it would be allowed."""
    if policy == "block":
        where = "on this server"
    elif marked_channels:
        where = "outside age-restricted (NSFW) channels"
    else:
        where = "in this channel (an admin can open a channel for it with the channel setting nsfw=allow)"
    return f'"{_quoted(matched)}" is adult or graphic content, which isn\'t allowed {where}.{_try(suggestion, admin)}'


def provider_flagged(provider: str, categories: tuple[str, ...]) -> str:
    why = f" ({', '.join(c.replace('_', ' ') for c in categories[:4])})" if categories else ""
    return f"{provider}'s moderation check flagged this prompt{why}. Try describing it another way."


def moderation_unavailable(provider: str) -> str:
    return f"{provider}'s moderation check, which this server requires, isn't answering. Try again soon."


def _try(suggestion: str | None, admin: bool) -> str:
    hint = f' Try: "{_quoted(suggestion)}".' if suggestion else " Try describing it another way."
    if admin:
        return hint + " As an admin you can add --override to draw it anyway (it is logged)."
    return hint


def _quoted(text: str) -> str:
    flat = " ".join(text.split()).replace('"', "'")
    return flat if len(flat) <= 120 else flat[:119] + "…"


def audit_line(action: str, rule: str, term: str) -> str:
    """What an audit row records, in words: 'refused · blocked word "gore"'."""
    what = _RULE_NAMES.get(rule, rule.replace("_", " "))
    return f'{action.replace("_", " ")} · {what} "{_quoted(term)}"' if term else f'{action.replace("_", " ")} · {what}'


def unknown_setting(key: str, allowed: list[str]) -> str:
    return f"There is no setting '{key}'. Settings you can change: {', '.join(allowed)}."


def negative_prompt_folded(provider: str) -> str:
    return f"{provider} takes no negative prompt, so yours was added to the prompt as \"avoid: ...\""


def cost_estimate(usd: float) -> str:
    return f"Estimated cost: ${usd:.3f}."


# --- chat surfaces (Discord, Slack): answers to commands, buttons and reactions -------------------
SUBMITTING = "Queuing your prompt..."
NOTHING_QUEUED = "You have nothing waiting or running."
NO_HISTORY = "Nothing has been made in this channel yet."
NO_IMAGES = "There are no images in this channel yet."
NO_STYLES = "There are no styles set up yet."
DELETED = "Deleted."
FAVOURITED = "Added to your favourites."
DM_SENT = "I sent you the full-size images in a direct message."
DM_CLOSED = "I can't send you direct messages: allow DMs from this server's members, then try again."
NOT_A_RESULT = "That message is not one of my results."
ATTACHMENT_UNREADABLE = "I couldn't download that attachment; try uploading it again."
SOMETHING_WENT_WRONG = "Something went wrong on our side; the admins can see the log."
GALLERY_LINK = "Open the gallery"


def queued_batch(count: int) -> str:
    return f"Queued {count} jobs from your prompt; each has its own card below."


def cancelled_job(job_id: str) -> str:
    return f"Cancelled job {job_id}."


def settings_saved(scope: str) -> str:
    return "Saved your settings." if scope == "user" else f"Saved the {scope} settings."


def page_of(page: int, more: bool) -> str:
    return f"Page {page}" + (" (more on the next page)" if more else "")


# --- chat surfaces, continued: sentences the Slack surface needs (platform-neutral wording) -------
CANNOT_POST_HERE = "I can't post in this channel. Add me to it (for example with /invite), then try again."
DM_FAILED = "I couldn't send you a direct message; try again later."
SETTINGS_HOW = "Change one with key=value, for example: count=2 aspect=16:9 (value default clears it)."
