"""Acting as Slack towards the bot, in either transport: commands, button presses, reactions,
shortcuts, modal submissions and App Home visits.

Over HTTP every request is signed like Slack signs it (``v0=`` HMAC-SHA256 over
``v0:{timestamp}:{body}`` with the signing secret) and POSTed to the bot's ``/slack/events``:
commands as forms, interactivity as a form with ``payload=<json>``, events as JSON. Over Socket
Mode the same payloads go out as envelopes on the fake's ``/link`` socket. Either way the driver
returns the ack and how long it took.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import aiohttp

from tests.fakes.slack.state import Ephemeral, Message, elements

if TYPE_CHECKING:
    from tests.fakes.slack.server import FakeSlack

VERIFICATION_TOKEN = "fake-verification-token"


@dataclass
class Acked:
    """The bot's answer to one delivery: HTTP status (200 for a socket ack), body, seconds taken."""

    status: int
    seconds: float
    body: Any = None


@dataclass
class Interaction:
    acked: Acked
    response_url: str | None = None
    trigger_id: str | None = None


def sign(secret: str, timestamp: str, body: str) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


class SlackDriver:
    """Sends Slack's requests to the bot; ``transport`` is "http" or "socket"."""

    def __init__(self, fake: FakeSlack, transport: str, *, events_url: str | None = None) -> None:
        self.fake = fake
        self.transport = transport
        self.events_url = events_url
        self._session: aiohttp.ClientSession | None = None
        self._events = 0

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    # --- what users do ---------------------------------------------------------------------------
    async def slash(self, command: str, text: str, *, user: str, channel: str) -> Interaction:
        response_url = self.fake.new_response_url(channel, user)
        trigger = self.fake.new_trigger(user)
        payload = {
            "token": VERIFICATION_TOKEN, "team_id": self.fake.team_id, "team_domain": "fake",
            "channel_id": channel, "channel_name": self.fake.channels[channel].name, "user_id": user,
            "user_name": self.fake.users[user].name, "command": command, "text": text,
            "api_app_id": self.fake.app_id, "is_enterprise_install": "false", "response_url": response_url,
            "trigger_id": trigger,
        }
        return Interaction(await self.deliver("slash_commands", payload), response_url, trigger)

    async def press(self, message: Message | Ephemeral, action_id: str, *, user: str) -> Interaction:
        """Press the element ``action_id`` on a message or an ephemeral answer."""
        element = _element(message.blocks, action_id)
        response_url = self.fake.new_response_url(message.channel, user, message)
        container: dict[str, Any] = {"type": "message", "message_ts": message.ts, "channel_id": message.channel,
                                     "is_ephemeral": isinstance(message, Ephemeral)}
        payload = self._action_payload(user, element, container)
        payload.update({"channel": {"id": message.channel, "name": self.fake.channels[message.channel].name},
                        "response_url": response_url})
        if isinstance(message, Message):
            payload["message"] = message.payload(self.fake.team_id)
            if message.thread_ts:
                container["thread_ts"] = message.thread_ts
        return Interaction(await self.deliver("interactive", payload), response_url, payload["trigger_id"])

    async def press_in_home(self, user: str, action_id: str) -> Interaction:
        """Press ``action_id`` on the newest home tab published for ``user``."""
        view = self.fake.homes[user][-1]
        element = _element(view.get("blocks") or [], action_id)
        container = {"type": "view", "view_id": "VHOME0001"}
        payload = self._action_payload(user, element, container)
        payload["view"] = {"id": "VHOME0001", "type": "home", **view}
        return Interaction(await self.deliver("interactive", payload), None, payload["trigger_id"])

    async def react(self, message: Message, name: str, *, user: str, event_id: str | None = None,
                    retry: int | None = None) -> Acked:
        message.reactions.setdefault(name, []).append(user)
        event = {"type": "reaction_added", "user": user, "reaction": name, "item_user": message.user,
                 "item": {"type": "message", "channel": message.channel, "ts": message.ts},
                 "event_ts": self.fake.ids.ts()}
        return await self.event(event, event_id=event_id, retry=retry)

    async def shortcut(self, callback_id: str, *, user: str) -> Interaction:
        trigger = self.fake.new_trigger(user)
        payload = {"type": "shortcut", "token": VERIFICATION_TOKEN, "action_ts": self.fake.ids.ts(),
                   "team": {"id": self.fake.team_id, "domain": "fake"}, "user": self._user(user),
                   "is_enterprise_install": False, "enterprise": None, "callback_id": callback_id,
                   "trigger_id": trigger}
        return Interaction(await self.deliver("interactive", payload), None, trigger)

    async def submit_view(self, view_id: str, values: dict[str, str], *, user: str) -> Acked:
        """Submit an opened modal with ``values`` (block id to text, option value or channel)."""
        view = self.fake.views[view_id].view
        state: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            block_id = block.get("block_id")
            if block.get("type") != "input" or block_id not in values:
                continue
            state[block_id] = {"value": _answer(block["element"], values[block_id])}
        payload = {
            "type": "view_submission", "team": {"id": self.fake.team_id, "domain": "fake"},
            "user": self._user(user), "api_app_id": self.fake.app_id, "token": VERIFICATION_TOKEN,
            "trigger_id": self.fake.new_trigger(user), "is_enterprise_install": False, "enterprise": None,
            "view": {**view, "id": view_id, "team_id": self.fake.team_id, "state": {"values": state},
                     "hash": "1.abc", "app_id": self.fake.app_id, "bot_id": self.fake.bot_id},
            "response_urls": [],
        }
        return await self.deliver("interactive", payload)

    async def open_home(self, user: str) -> Acked:
        dm = self.fake.dm_with(user)
        return await self.event({"type": "app_home_opened", "user": user, "channel": dm.id, "tab": "home",
                                 "event_ts": self.fake.ids.ts()})

    async def event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> Acked:
        self._events += 1
        wrapper = {
            "token": VERIFICATION_TOKEN, "team_id": self.fake.team_id, "api_app_id": self.fake.app_id,
            "event": event, "type": "event_callback", "event_id": event_id or f"Ev{self._events:010d}",
            "event_time": int(time.time()), "is_ext_shared_channel": False, "event_context": "4-fake",
            "authorizations": [{"enterprise_id": None, "team_id": self.fake.team_id, "user_id": self.fake.bot.id,
                                "is_bot": True, "is_enterprise_install": False}],
        }
        return await self.deliver("events_api", wrapper, retry=retry)

    # --- transports ------------------------------------------------------------------------------
    async def deliver(self, kind: str, payload: dict[str, Any], *, retry: int | None = None) -> Acked:
        if self.transport == "socket":
            ack = await self.fake.socket.push(kind, payload, retry_attempt=retry,
                                              retry_reason="http_timeout" if retry else None)
            return Acked(200, ack.seconds, ack.payload)
        if kind == "slash_commands":
            body, content_type = urlencode(payload), "application/x-www-form-urlencoded"
        elif kind == "interactive":
            body, content_type = urlencode({"payload": json.dumps(payload)}), "application/x-www-form-urlencoded"
        else:
            body, content_type = json.dumps(payload), "application/json"
        headers = self.signed_headers(body)
        if retry:
            headers.update({"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"})
        return await self.post(body, content_type, headers)

    def signed_headers(self, body: str, *, timestamp: float | None = None, secret: str | None = None) -> dict[str, str]:
        stamp = str(int(time.time() if timestamp is None else timestamp))
        return {"X-Slack-Request-Timestamp": stamp,
                "X-Slack-Signature": sign(secret or self.fake.signing_secret, stamp, body)}

    async def post(self, body: str, content_type: str, headers: dict[str, str]) -> Acked:
        """POST a raw body to the bot's events URL (HTTP transport)."""
        assert self.events_url is not None, "the HTTP transport needs the bot's events URL"
        if self._session is None:
            self._session = aiohttp.ClientSession()
        started = time.monotonic()
        async with self._session.post(self.events_url, data=body.encode(),
                                      headers={**headers, "Content-Type": content_type}) as response:
            text = await response.text()
            seconds = time.monotonic() - started
            try:
                answer: Any = json.loads(text) if text else None
            except ValueError:
                answer = text
            return Acked(response.status, seconds, answer)

    # --- helpers ---------------------------------------------------------------------------------
    def _user(self, user: str) -> dict[str, Any]:
        name = self.fake.users[user].name
        return {"id": user, "username": name, "name": name, "team_id": self.fake.team_id}

    def _action_payload(self, user: str, element: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
        action = {"action_id": element["action_id"], "block_id": "b", "type": element.get("type", "button"),
                  "action_ts": self.fake.ids.ts()}
        if "value" in element:
            action["value"] = element["value"]
        if "text" in element:
            action["text"] = element["text"]
        return {"type": "block_actions", "user": self._user(user), "api_app_id": self.fake.app_id,
                "token": VERIFICATION_TOKEN, "container": container, "trigger_id": self.fake.new_trigger(user),
                "team": {"id": self.fake.team_id, "domain": "fake"}, "enterprise": None,
                "is_enterprise_install": False, "state": {"values": {}}, "actions": [action]}


def _element(layout: list[dict[str, Any]], action_id: str) -> dict[str, Any]:
    for element in elements(layout):
        if element.get("action_id") == action_id:
            return element
    raise AssertionError(f"no element {action_id!r} in those blocks")


def _answer(element: dict[str, Any], value: str) -> dict[str, Any]:
    kind = element.get("type")
    if kind == "static_select":
        return {"type": kind, "selected_option": {"text": {"type": "plain_text", "text": value}, "value": value}}
    if kind == "conversations_select":
        return {"type": kind, "selected_conversation": value}
    return {"type": kind, "value": value}
