"""Every sentence imaginebot says to a user, in one place so wording stays consistent.

Surfaces format these for their platform; they never invent their own wording for core states.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime


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


# --- actions ---------------------------------------------------------------------------------
NOT_YOUR_JOB = "Only the person who made this (or a server admin) can do that."
JOB_NOT_FOUND = "I can't find that job. It may have been deleted."
IMAGE_NOT_FOUND = "That job has no image with that number."
JOB_NOT_FINISHED = "That job has not finished yet."
ALREADY_FINISHED = "That job has already finished."
ADMIN_ONLY = "Only a server admin can change that."


def capability_missing(provider: str, what: str) -> str:
    return f"{provider} can't do {what}. Pick another provider with --provider."


def unknown_setting(key: str, allowed: list[str]) -> str:
    return f"There is no setting '{key}'. Settings you can change: {', '.join(allowed)}."
