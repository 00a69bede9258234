"""What each fake Web API method does to the state, and what it answers."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from tests.fakes.slack.blockkit import check_message, check_view
from tests.fakes.slack.state import Ephemeral, File, Upload, View

if TYPE_CHECKING:
    from tests.fakes.slack.server import FakeSlack
    from tests.fakes.slack.webapi import Answer, Call

TRIGGER_SECONDS = 3.0


def _error(code: str) -> Answer:
    return {"ok": False, "error": code}


# --- identity --------------------------------------------------------------------------------------
async def auth_test(fake: FakeSlack, call: Call) -> Answer:
    return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake workspace", "user": fake.bot.name,
            "team_id": fake.team_id, "user_id": fake.bot.id, "bot_id": fake.bot_id,
            "is_enterprise_install": False}


async def apps_connections_open(fake: FakeSlack, call: Call) -> Answer:
    return {"ok": True, "url": f"{fake.ws_url}?ticket={fake.ids.next('t')}"}


async def users_info(fake: FakeSlack, call: Call) -> Answer:
    user = fake.users.get(str(call.params.get("user")))
    return _error("user_not_found") if user is None else {"ok": True, "user": user.payload(fake.team_id)}


# --- messages --------------------------------------------------------------------------------------
async def chat_post_message(fake: FakeSlack, call: Call) -> Answer:
    params = call.params
    channel = fake.channels.get(str(params.get("channel")))
    if channel is None:
        return _error("channel_not_found")
    if fake.bot.id not in channel.members:
        return _error("not_in_channel")
    text, layout = params.get("text"), _structure(params.get("blocks"))
    if not text and not layout:
        return _error("no_text")
    fake.spec.blocks(call.method, check_message(text, layout))
    thread_ts = params.get("thread_ts")
    if thread_ts is not None and not fake.is_parent(channel.id, str(thread_ts)):
        fake.spec.blocks(call.method, [f"thread_ts {thread_ts} is not a parent message"])
    msg = fake.post(channel.id, str(text or ""), layout or [], thread_ts=str(thread_ts) if thread_ts else None)
    return {"ok": True, "channel": channel.id, "ts": msg.ts, "message": msg.payload(fake.team_id)}


async def chat_update(fake: FakeSlack, call: Call) -> Answer:
    params = call.params
    msg = fake.messages.get((str(params.get("channel")), str(params.get("ts"))))
    if msg is None or msg.deleted:
        return _error("message_not_found")
    if msg.user != fake.bot.id:
        return _error("cant_update_message")
    text, layout = params.get("text"), _structure(params.get("blocks"))
    fake.spec.blocks(call.method, check_message(text, layout))
    msg.edits.append(call.at)
    if text is not None:
        msg.text = str(text)
    if layout is not None:
        msg.blocks = layout
    return {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": msg.text, "message": {"text": msg.text}}


async def chat_delete(fake: FakeSlack, call: Call) -> Answer:
    msg = fake.messages.get((str(call.params.get("channel")), str(call.params.get("ts"))))
    if msg is None or msg.deleted:
        return _error("message_not_found")
    if msg.user != fake.bot.id:
        return _error("cant_delete_message")
    msg.deleted = True
    return {"ok": True, "channel": msg.channel, "ts": msg.ts}


async def chat_post_ephemeral(fake: FakeSlack, call: Call) -> Answer:
    params = call.params
    channel = fake.channels.get(str(params.get("channel")))
    if channel is None or fake.bot.id not in channel.members:
        return _error("channel_not_found")
    user = str(params.get("user"))
    if user not in channel.members:
        return _error("user_not_in_channel")
    text, layout = params.get("text"), _structure(params.get("blocks"))
    fake.spec.blocks(call.method, check_message(text, layout))
    ts = fake.ids.ts()
    fake.ephemerals.append(Ephemeral(channel.id, user, str(text or ""), layout or [], ts=ts))
    return {"ok": True, "message_ts": ts}


async def conversations_replies(fake: FakeSlack, call: Call) -> Answer:
    msg = fake.messages.get((str(call.params.get("channel")), str(call.params.get("ts"))))
    if msg is None or msg.deleted:
        return _error("thread_not_found")
    parent = fake.messages[(msg.channel, msg.thread_ts)] if msg.thread_ts else msg
    replies = fake.replies(parent.channel, parent.ts)
    first = {**parent.payload(fake.team_id), "thread_ts": parent.ts, "reply_count": len(replies),
             "subscribed": False}
    found = [first] + [r.payload(fake.team_id) | {"parent_user_id": parent.user} for r in replies]
    limit = int(call.params.get("limit") or 1000)
    return {"ok": True, "messages": found[:limit], "has_more": len(found) > limit}


async def conversations_open(fake: FakeSlack, call: Call) -> Answer:
    user = fake.users.get(str(call.params.get("users")))
    if user is None:
        return _error("user_not_found")
    return {"ok": True, "channel": {"id": fake.dm_with(user.id).id}}


# --- views -----------------------------------------------------------------------------------------
async def views_open(fake: FakeSlack, call: Call) -> Answer:
    trigger = fake.triggers.get(str(call.params.get("trigger_id")))
    if trigger is None:
        return _error("invalid_trigger_id")
    if trigger.used or time.monotonic() - trigger.created > TRIGGER_SECONDS:
        return _error("expired_trigger_id")
    trigger.used = True
    view = _structure(call.params.get("view"))
    fake.spec.blocks(call.method, check_view(view))
    opened = View(fake.ids.next("V"), trigger.user, view if isinstance(view, dict) else {})
    fake.views[opened.id] = opened
    return {"ok": True, "view": {"id": opened.id, **opened.view}}


async def views_publish(fake: FakeSlack, call: Call) -> Answer:
    user = str(call.params.get("user_id"))
    if user not in fake.users:
        return _error("user_not_found")
    view = _structure(call.params.get("view"))
    fake.spec.blocks(call.method, check_view(view))
    fake.homes.setdefault(user, []).append(view if isinstance(view, dict) else {})
    return {"ok": True, "view": {"id": fake.ids.next("V"), **(view if isinstance(view, dict) else {})}}


# --- files v2 --------------------------------------------------------------------------------------
async def files_get_upload_url(fake: FakeSlack, call: Call) -> Answer:
    length = int(call.params.get("length") or 0)
    if length <= 0:
        return _error("invalid_arguments")
    if length > fake.upload_limit:
        fake.oversized_uploads += 1
        return _error("file_too_large")
    file = File(fake.ids.next("F"), str(call.params.get("filename")), length,
                alt_txt=call.params.get("alt_txt"))
    fake.files[file.id] = file
    return {"ok": True, "upload_url": f"{fake.base_url}/upload/{file.id}", "file_id": file.id}


async def files_complete_upload(fake: FakeSlack, call: Call) -> Answer:
    params = call.params
    try:
        listed = json.loads(str(params.get("files")))
    except ValueError:
        return _error("invalid_arguments")
    files = [fake.files.get(str(entry.get("id"))) for entry in listed if isinstance(entry, dict)]
    if not files or any(f is None or f.data is None or f.completed for f in files):
        return _error("file_not_found")
    channel_id, thread_ts = params.get("channel_id"), params.get("thread_ts")
    if thread_ts is not None and channel_id is None:
        fake.spec.blocks(call.method, ["thread_ts needs channel_id"])
    ready = [f for f in files if f is not None]
    for entry, file in zip(listed, ready, strict=True):
        file.title, file.completed = entry.get("title"), True
    comment = str(params.get("initial_comment") or "")
    message_ts = None
    if channel_id is not None:
        channel = fake.channels.get(str(channel_id))
        if channel is None or fake.bot.id not in channel.members:
            return _error("channel_not_found")
        msg = fake.post(channel.id, comment, [], thread_ts=str(thread_ts) if thread_ts else None, via="files")
        msg.files = [f.id for f in ready]
        message_ts = msg.ts
    fake.uploads.append(Upload(ready, str(channel_id) if channel_id else None,
                               str(thread_ts) if thread_ts else None, comment, message_ts))
    return {"ok": True, "files": [{"id": f.id, "title": f.title or f.filename} for f in ready]}


async def files_delete(fake: FakeSlack, call: Call) -> Answer:
    file = fake.files.get(str(call.params.get("file")))
    if file is None or file.deleted:
        return _error("file_not_found")
    file.deleted = True
    return {"ok": True}


def _structure(value: Any) -> Any:
    """A JSON parameter as sent: already a structure (JSON body) or a JSON string (form body)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


METHODS = {
    "auth.test": auth_test,
    "apps.connections.open": apps_connections_open,
    "users.info": users_info,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "conversations.replies": conversations_replies,
    "conversations.open": conversations_open,
    "views.open": views_open,
    "views.publish": views_publish,
    "files.getUploadURLExternal": files_get_upload_url,
    "files.completeUploadExternal": files_complete_upload,
    "files.delete": files_delete,
}
