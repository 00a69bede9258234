"""What the bot's Slack messages look like: job cards, result comments and short notices, in Block Kit.

Everything a user typed goes through :func:`~adapters.slack.text.shown` (escaped and clipped) and
into ``verbatim`` mrkdwn, so an echoed prompt never mentions or broadcasts. Sentences come from
:mod:`bot.messages`; this module only lays them out. A card's fallback text starts with
``job <id>``, which is how :mod:`.lookup` finds the job of a message it did not post itself.
"""

from __future__ import annotations

from typing import Any

from adapters.slack.buttons import job_button
from adapters.slack.text import clip, escape, shown
from bot import messages
from bot.jobs import ImageRecord, Job, JobStatus
from bot.request import JobKind
from bot.surface import Card

Blocks = list[dict[str, Any]]

#: Block Kit and message limits (characters).
SECTION_LIMIT = 3000
CONTEXT_LIMIT = 2000
FALLBACK_LIMIT = 3000
COMMENT_LIMIT = 3500
ALT_TEXT_LIMIT = 1000
FILE_TITLE_LIMIT = 250
_BAR_CELLS = 20

_DELETE_CONFIRM = {
    "title": {"type": "plain_text", "text": "Delete this job?"},
    "text": {"type": "plain_text", "text": "Its card and images are removed for everyone."},
    "confirm": {"type": "plain_text", "text": "Delete"},
    "deny": {"type": "plain_text", "text": "Keep"},
}


def mrkdwn(text: str) -> dict[str, Any]:
    """A mrkdwn text object that Slack takes as it is (no auto-linking or mention parsing)."""
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "section", "text": mrkdwn(clip(text, SECTION_LIMIT))}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def context(text: str, block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "context", "elements": [mrkdwn(clip(text, CONTEXT_LIMIT))]}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def actions(elements: list[dict[str, Any]], block_id: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "actions", "elements": elements[:25]}
    if block_id is not None:
        block["block_id"] = block_id
    return block


def notice(text: str) -> tuple[str, Blocks]:
    """A sentence as a message: fallback text and one section, both escaped."""
    safe = escape(text)
    return clip(safe, FALLBACK_LIMIT), [section(safe)]


# --- job cards -----------------------------------------------------------------------------------
def status_text(card: Card) -> str:
    return messages.card_status(card)


def placeholder(text: str = messages.SUBMITTING) -> tuple[str, Blocks]:
    """The card's first look, posted before the job exists (it becomes the card)."""
    return notice(text)


def card_message(card: Card) -> tuple[str, Blocks]:
    """The card's fallback text and blocks: prompt, status, job line and its buttons."""
    job = card.job
    status = escape(status_text(card))
    if card.status is JobStatus.RUNNING and card.fraction is not None:
        status += "\n" + progress_bar(card.fraction)
    blocks: Blocks = [
        section(f"*{shown(messages.job_title(job), SECTION_LIMIT - 2)}*", "prompt"),
        context(status, "status"),
        context(job_line(job), "job"),
    ]
    blocks += card_actions(card)
    fallback = f"job {job.id}: {clip(escape(status_text(card)), 200)} {shown(job.request.prompt, 500)}"
    return clip(fallback, FALLBACK_LIMIT), blocks


def job_line(job: Job) -> str:
    """``job <id> · provider · author``: the line lookups and people use to name a job."""
    author = shown(job.origin.user_name or job.origin.user_id, 80)
    return f"job `{job.id}` · {escape(job.provider)} · {author}"


def card_actions(card: Card) -> Blocks:
    """Cancel while the job waits or runs; upscale, vary, reroll, favourite and delete on a result."""
    job = card.job
    if not card.final:
        return [actions([job_button("Cancel", "c", job.id, style="danger")], "controls")]
    if card.status is not JobStatus.SUCCEEDED:
        return []
    numbers = range(1, image_count(job) + 1)
    blocks: Blocks = []
    if job.request.kind is not JobKind.UPSCALE:
        picks = [job_button(f"U{n}", "u", job.id, n) for n in numbers]
        picks += [job_button(f"V{n}", "v", job.id, n) for n in numbers]
        blocks.append(actions(picks, "images"))
    blocks.append(actions([
        job_button("🔁 Reroll", "r", job.id),
        job_button("⭐ Favourite", "f", job.id),
        job_button("🗑️ Delete", "d", job.id, style="danger", confirm=_DELETE_CONFIRM),
    ], "result"))
    return blocks


def progress_bar(fraction: float) -> str:
    filled = max(0, min(_BAR_CELLS, round(fraction * _BAR_CELLS)))
    return "`" + "█" * filled + "░" * (_BAR_CELLS - filled) + f"` {round(100 * fraction)} %"


def image_count(job: Job) -> int:
    return 1 if job.request.kind is JobKind.UPSCALE else min(job.request.count, 4)


# --- results ---------------------------------------------------------------------------------------
def result_comment(job: Job, images: list[ImageRecord], served_by: str | None) -> str:
    """The upload's message: prompt, negative prompt, seeds, provider, model, time, cost and job."""
    request = job.request
    lines = [f"*{shown(messages.job_title(job), 1000)}*"]
    if request.negative_prompt:
        lines.append(f"Negative: {shown(request.negative_prompt, 500)}")
    ordered = sorted(images, key=lambda r: r.index)
    seeds = ", ".join(str(r.seed) for r in ordered if r.seed is not None) or "random"
    first = ordered[0] if ordered else None
    facts = [f"seed {clip(seeds, 200)}", escape(first.provider if first else job.provider)]
    if first is not None and first.model:
        facts.append(shown(first.model, 100))
    duration = messages.run_seconds(job)
    if duration is not None:
        facts.append(messages.duration(duration))
    facts.append(f"${sum(r.cost_usd for r in images):.3f}")
    facts.append(f"job `{job.id}`")
    lines.append(" · ".join(facts))
    if served_by:
        lines.append(escape(messages.finished(duration, served_by, job.provider)))
    return clip("\n".join(lines), COMMENT_LIMIT)


def file_title(job: Job, filename: str) -> str:
    """A file's title: "Grid" or "Image N", then the prompt (escaped)."""
    stem = filename.rsplit(".", 1)[0]
    label = "Grid" if stem.endswith("-grid") else f"Image {stem.rsplit('-', 1)[-1]}"
    return clip(f"{label}: {escape(job.request.prompt)}", FILE_TITLE_LIMIT)


def alt_text(job: Job) -> str:
    return shown(job.request.prompt, ALT_TEXT_LIMIT)


# --- shared ----------------------------------------------------------------------------------------
