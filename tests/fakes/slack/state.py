"""What the fake Slack remembers: its people, channels, messages, files, views and interactions.

Ids follow the shapes the Web API spec checks (``U...``, ``C...``, ``T...``, ts as
``0123456789.012345``), so the fake's own answers pass the spec's response schemas.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

_DIGITS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"


class Ids:
    """Unique ids with Slack's prefixes, and unique, increasing message timestamps."""

    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self._last_ts = 0.0

    def next(self, prefix: str, width: int = 10) -> str:
        n, out = next(self._seq), ""
        while n:
            n, digit = divmod(n, len(_DIGITS))
            out = _DIGITS[digit] + out
        return prefix + out.rjust(width, "0")

    def ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = now
        return f"{now:.6f}"


@dataclass
class User:
    id: str
    name: str
    is_admin: bool = False
    is_owner: bool = False
    is_bot: bool = False

    def payload(self, team_id: str) -> dict[str, Any]:
        profile = {"display_name": self.name, "real_name": self.name.title(), "team": team_id}
        return {
            "id": self.id, "team_id": team_id, "name": self.name, "real_name": self.name.title(),
            "deleted": False, "is_admin": self.is_admin, "is_owner": self.is_owner, "is_primary_owner": False,
            "is_bot": self.is_bot, "is_app_user": False, "is_restricted": False, "updated": 1_700_000_000,
            "tz": "Europe/Berlin", "profile": profile,
        }


@dataclass
class Channel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_im: bool = False


@dataclass
class Message:
    channel: str
    ts: str
    user: str
    text: str = ""
    blocks: list[dict[str, Any]] = field(default_factory=list)
    thread_ts: str | None = None
    files: list[str] = field(default_factory=list)
    bot_id: str | None = None
    deleted: bool = False
    #: Monotonic times of chat.update calls on this message.
    edits: list[float] = field(default_factory=list)
    #: reaction name -> users
    reactions: dict[str, list[str]] = field(default_factory=dict)
    #: "chat.postMessage", "files", "response_url"
    via: str = "chat.postMessage"

    def payload(self, team_id: str) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text,
                                "team": team_id}
        if self.blocks:
            data["blocks"] = self.blocks
        if self.bot_id is not None:
            data["bot_id"] = self.bot_id
        if self.thread_ts is not None:
            data["thread_ts"] = self.thread_ts
        return data

    def action_ids(self) -> list[str]:
        return [str(e.get("action_id")) for e in elements(self.blocks)]


@dataclass
class Ephemeral:
    """A message only one user sees (from chat.postEphemeral or a response_url)."""

    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)
    via: str = "chat.postEphemeral"
    replaced: bool = False
    ts: str = ""

    def action_ids(self) -> list[str]:
        return [str(e.get("action_id")) for e in elements(self.blocks)]


@dataclass
class File:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    data: bytes | None = None
    title: str | None = None
    completed: bool = False
    deleted: bool = False


@dataclass
class Upload:
    """One files.completeUploadExternal: the files shared together and where."""

    files: list[File]
    channel: str | None
    thread_ts: str | None
    comment: str
    message_ts: str | None


@dataclass
class ResponseUrl:
    token: str
    channel: str
    user: str
    created: float  # fake wall clock
    #: The message the interaction came from (a button's message), for replace_original.
    source: Message | Ephemeral | None = None
    uses: int = 0


@dataclass
class Trigger:
    id: str
    user: str
    created: float  # monotonic
    used: bool = False


@dataclass
class View:
    id: str
    user: str
    view: dict[str, Any]


def elements(layout: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every interactive element in blocks: actions' elements and sections' accessories."""
    found: list[dict[str, Any]] = []
    for block in layout:
        if block.get("type") == "actions":
            found += list(block.get("elements") or [])
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and "action_id" in accessory:
            found.append(accessory)
    return found
