"""Stateless buttons: the action and the job live in the ``action_id`` (``ib:<action>:<job>[:<n>]``).

A press is parsed from its id alone, so buttons keep working after a restart; the job is looked
up and ownership checked by the service when pressed. Page buttons carry their cursor in
``value`` (``ibp:<list>:<page>``), so paging needs no memory either.
"""

from __future__ import annotations

import re
from typing import Any

from adapters.slack.text import clip

PREFIX = "ib"
#: Actions: u upscale N, v vary N, r reroll, a run again (from history), d delete, f favourite,
#: c cancel.
ACTION_CODES = "uvradfc"
NEW_JOB_ACTIONS = frozenset("uvra")
ACTION_RE = re.compile(rf"^{PREFIX}:(?P<action>[{ACTION_CODES}]):(?P<job>[0-9a-z]{{1,32}})(?::(?P<n>[1-4]))?$")
PAGE_RE = re.compile(r"^ibp:(?P<list>[hg]):(?P<page>[0-9]{1,4})$")
#: The App Home's "Make an image" button, which opens the advanced-options modal.
OPEN_MODAL = "ibm:open"

#: Block Kit limits (characters) for buttons.
LABEL_LIMIT = 75
VALUE_LIMIT = 2000


def action_id(action: str, job_id: str, n: int | None = None) -> str:
    """The action id of a job button; ``n`` is the 1-based image number for U and V."""
    return f"{PREFIX}:{action}:{job_id}" + (f":{n}" if n is not None else "")


def parse_action_id(value: str) -> tuple[str, str, int | None] | None:
    """(action, job id, image number) of one of our action ids, or None."""
    match = ACTION_RE.fullmatch(value)
    if match is None:
        return None
    n = match["n"]
    return match["action"], match["job"], int(n) if n else None


def page_id(list_name: str, page: int) -> str:
    return f"ibp:{list_name}:{page}"


def parse_page_id(value: str) -> tuple[str, int] | None:
    match = PAGE_RE.fullmatch(value)
    return None if match is None else (match["list"], int(match["page"]))


def button(
    label: str, action: str, *, value: str = "", style: str | None = None, confirm: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A Block Kit button; ``label`` is ours (never user text), ``value`` at most 2000 characters."""
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(label, LABEL_LIMIT), "emoji": True},
        "action_id": action,
    }
    if value:
        element["value"] = value[:VALUE_LIMIT]
    if style is not None:
        element["style"] = style
    if confirm is not None:
        element["confirm"] = confirm
    return element


def job_button(label: str, action: str, job_id: str, n: int | None = None, *, style: str | None = None,
               confirm: dict[str, Any] | None = None) -> dict[str, Any]:
    return button(label, action_id(action, job_id, n), value=job_id, style=style, confirm=confirm)
