"""Persistent buttons: the action and the job live in the custom id (``ib:<action>:<job>[:<n>]``).

They are :class:`discord.ui.DynamicItem` s, registered once in ``setup_hook``: a press is parsed
from its custom id, so buttons keep working after a restart, and the job is looked up in storage
and ownership checked by the service when pressed. The callback hands over to :mod:`.actions`.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.jobs import Job
from bot.surface import Card

PREFIX = "ib"
#: Actions: u upscale N, v vary N, r reroll, a run again (from history), d delete,
#: f favourite, c cancel.
ACTION_CODES = "uvradfc"
TEMPLATE = rf"{PREFIX}:(?P<action>[{ACTION_CODES}]):(?P<job>[0-9a-z]{{1,32}})(?::(?P<n>[1-4]))?"
_PATTERN = re.compile(TEMPLATE)

_LOOKS: dict[str, tuple[str, discord.ButtonStyle]] = {
    "r": ("🔁", discord.ButtonStyle.secondary),
    "a": ("Run again", discord.ButtonStyle.secondary),
    "d": ("🗑️", discord.ButtonStyle.danger),
    "f": ("⭐", discord.ButtonStyle.secondary),
    "c": ("Cancel", discord.ButtonStyle.danger),
}


def custom_id(action: str, job_id: str, n: int | None = None) -> str:
    """The custom id of a button; ``n`` is the 1-based image number for U and V."""
    return f"{PREFIX}:{action}:{job_id}" + (f":{n}" if n is not None else "")


def parse_custom_id(value: str) -> tuple[str, str, int | None] | None:
    """(action, job id, image number) of one of our custom ids, or None."""
    match = _PATTERN.fullmatch(value)
    if match is None:
        return None
    n = match["n"]
    return match["action"], match["job"], int(n) if n else None


class JobButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """A button acting on a job; rebuilt from its custom id on every press."""

    def __init__(self, action: str, job_id: str, n: int | None = None, *, label: str | None = None) -> None:
        default_label, style = _LOOKS.get(action, (f"{action.upper()}{n}", discord.ButtonStyle.secondary))
        super().__init__(
            discord.ui.Button(label=label or default_label, style=style, custom_id=custom_id(action, job_id, n))
        )
        self.action, self.job_id, self.n = action, job_id, n

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> JobButton:
        n = match["n"]
        return cls(match["action"], match["job"], int(n) if n else None)

    async def callback(self, interaction: discord.Interaction) -> None:
        from adapters.discord.actions import on_button  # the actions module imports this one

        await on_button(interaction, self.action, self.job_id, self.n)


def result_view(job: Job, image_count: int) -> discord.ui.View:
    """U1-U4, V1-V4, reroll, favourite and delete under a result."""
    view = discord.ui.View(timeout=None)
    numbers = range(1, min(image_count, 4) + 1)
    for n in numbers:
        view.add_item(JobButton("u", job.id, n, label=f"U{n}"))
    for n in numbers:
        view.add_item(JobButton("v", job.id, n, label=f"V{n}"))
    for action in ("r", "f", "d"):
        view.add_item(JobButton(action, job.id))
    _rows(view)
    return view


def card_view(card: Card) -> discord.ui.View | None:
    """A cancel button while the job waits or runs; nothing once it is final."""
    if card.final:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(JobButton("c", card.job.id))
    return view


def picker_view(action: str, job_id: str, image_count: int) -> discord.ui.View:
    """Buttons 1..N that run ``action`` (u or v) on one image of a job."""
    view = discord.ui.View(timeout=None)
    for n in range(1, min(image_count, 4) + 1):
        view.add_item(JobButton(action, job_id, n, label=f"{action.upper()}{n}"))
    return view


def _rows(view: discord.ui.View) -> None:
    # U buttons on the first row, V on the second, the rest on the third.
    for item in view.children:
        if isinstance(item, JobButton):
            item.row = {"u": 0, "v": 1}.get(item.action, 2)
