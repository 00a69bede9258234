"""What each fake REST route does to the state, and what it answers (status, JSON)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.state import (
    EPHEMERAL,
    LOADING,
    Attachment,
    Channel,
    Interaction,
    Message,
    channel_payload,
    message_payload,
)
from tests.fakes.discord.wire import error_body

if TYPE_CHECKING:
    from tests.fakes.discord.rest import Call
    from tests.fakes.discord.server import FakeDiscord

Answer = tuple[int, Any]
TOKEN_LIFETIME = 15 * 60
CALLBACK_DEADLINE = 3.0
CONTENT_LIMIT, EMBEDS_LIMIT, EMBED_TOTAL, FILES_LIMIT = 2000, 10, 6000, 10


# --- identity --------------------------------------------------------------------------------------
async def get_me(fake: FakeDiscord, call: Call) -> Answer:
    return 200, {**fake.state.bot, "mfa_enabled": True, "locale": "en-US", "verified": True, "email": None}


async def get_application(fake: FakeDiscord, call: Call) -> Answer:
    return 200, {
        "id": fake.state.app_id, "name": "imaginebot", "icon": None, "description": "", "type": None,
        "verify_key": "0" * 64, "flags": 0, "flags_new": "0", "redirect_uris": [], "interactions_endpoint_url": None,
        "role_connections_verification_url": None, "owner": fake.owner, "approximate_guild_count": 1,
        "approximate_user_install_count": 0, "approximate_user_authorization_count": 0,
        "explicit_content_filter": 0, "team": None, "eligible_oauth2_scopes": [], "bot_public": True,
        "bot_require_code_grant": False, "bot": fake.state.bot,
    }


async def get_gateway_bot(fake: FakeDiscord, call: Call) -> Answer:
    return 200, {"url": fake.gateway_url, "shards": 1, "session_start_limit": {
        "total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}


async def put_commands(fake: FakeDiscord, call: Call) -> Answer:
    scope = call.params.get("guild_id", "global")
    saved = []
    for command in call.body.json:
        saved.append({
            "id": fake.state.ids.next(), "application_id": fake.state.app_id, "version": fake.state.ids.next(),
            "default_member_permissions": None, "type": command.get("type", 1), "name": command["name"],
            "description": command.get("description", ""), "dm_permission": True, "nsfw": False,
            "integration_types": [0], "contexts": None,
            **({"guild_id": scope} if scope != "global" else {}),
            **({"options": command["options"]} if command.get("options") else {}),
        })
    fake.state.commands[scope] = saved
    return 200, saved


# --- interactions ----------------------------------------------------------------------------------
async def interaction_callback(fake: FakeDiscord, call: Call) -> Answer:
    inter = fake.state.interactions.get(call.params["interaction_id"])
    if inter is None or inter.token != call.params["interaction_token"]:
        return 404, error_body(10062, "Unknown interaction")
    if time.monotonic() - inter.created_real > CALLBACK_DEADLINE:
        return 404, error_body(10062, "Unknown interaction")
    if inter.responded is not None:
        return 400, error_body(40060, "Interaction has already been acknowledged.")
    body = call.body.json or {}
    kind, data = body.get("type"), body.get("data") or {}
    inter.responded, inter.callback_type = time.monotonic(), kind
    if kind == 8:
        inter.autocomplete = data.get("choices", [])
        return 204, None
    if kind in (4, 5):
        inter.ephemeral = bool(data.get("flags", 0) & EPHEMERAL)
        msg = _new_message(fake, inter.channel_id, data if kind == 4 else {}, call, webhook=True)
        msg.flags = (EPHEMERAL if inter.ephemeral else 0) | (LOADING if kind == 5 else 0)
        inter.original_id = msg.id
    elif kind in (6, 7) and inter.message_id is not None:
        inter.original_id = inter.message_id  # a component's "original" is the message it is on
        if kind == 7:
            _apply_edit(fake, fake.state.messages[inter.message_id], data, call)
    return 200, {"interaction": {
        "id": inter.id, "type": inter.type, "response_message_id": inter.original_id,
        "response_message_loading": kind == 5, "response_message_ephemeral": inter.ephemeral,
    }}


def _interaction(fake: FakeDiscord, call: Call) -> tuple[Interaction | None, Answer | None]:
    token = call.params["webhook_token"]
    inter = next((i for i in fake.state.interactions.values() if i.token == token), None)
    if inter is None or call.params["webhook_id"] != fake.state.app_id:
        return None, (404, error_body(10015, "Unknown Webhook"))
    if fake.clock.now() - inter.created_fake > TOKEN_LIFETIME:
        fake.expired_token_calls += 1
        return None, (401, error_body(50027, "Invalid Webhook Token"))
    return inter, None


async def get_original(fake: FakeDiscord, call: Call) -> Answer:
    inter, problem = _interaction(fake, call)
    if problem or inter is None or inter.original_id is None:
        return problem or (404, error_body(10008, "Unknown Message"))
    return 200, message_payload(fake.state.messages[inter.original_id])


async def edit_original(fake: FakeDiscord, call: Call) -> Answer:
    inter, problem = _interaction(fake, call)
    if problem or inter is None or inter.original_id is None:
        return problem or (404, error_body(10008, "Unknown Message"))
    return _edit(fake, fake.state.messages[inter.original_id], call)


async def delete_original(fake: FakeDiscord, call: Call) -> Answer:
    inter, problem = _interaction(fake, call)
    if problem or inter is None or inter.original_id is None:
        return problem or (404, error_body(10008, "Unknown Message"))
    fake.state.messages[inter.original_id].deleted = True
    return 204, None


async def post_followup(fake: FakeDiscord, call: Call) -> Answer:
    inter, problem = _interaction(fake, call)
    if problem or inter is None:
        return problem or (404, error_body(10015, "Unknown Webhook"))
    body = call.body.json or {}
    problem = _check_message(fake, body, call)
    if problem:
        return problem
    msg = _new_message(fake, inter.channel_id, body, call, webhook=True)
    msg.flags = body.get("flags", 0) & EPHEMERAL
    return 200, message_payload(msg)


async def edit_followup(fake: FakeDiscord, call: Call) -> Answer:
    _, problem = _interaction(fake, call)
    msg = fake.state.messages.get(call.params["message_id"])
    if problem or msg is None or msg.deleted:
        return problem or (404, error_body(10008, "Unknown Message"))
    return _edit(fake, msg, call)


async def delete_followup(fake: FakeDiscord, call: Call) -> Answer:
    _, problem = _interaction(fake, call)
    msg = fake.state.messages.get(call.params["message_id"])
    if problem or msg is None:
        return problem or (404, error_body(10008, "Unknown Message"))
    msg.deleted = True
    return 204, None


# --- channels and messages (bot token) ------------------------------------------------------------
async def post_message(fake: FakeDiscord, call: Call) -> Answer:
    channel = fake.state.channels.get(call.params["channel_id"])
    if channel is None:
        return 404, error_body(10003, "Unknown Channel")
    if channel.type == 1 and channel.recipient_id in fake.dm_closed:
        return 403, error_body(50007, "Cannot send messages to this user")
    body = call.body.json or {}
    problem = _check_message(fake, body, call)
    if problem:
        return problem
    return 200, message_payload(_new_message(fake, channel.id, body, call))


async def get_message(fake: FakeDiscord, call: Call) -> Answer:
    msg = fake.state.messages.get(call.params["message_id"])
    if msg is None or msg.deleted or msg.channel_id != call.params["channel_id"] or msg.flags & EPHEMERAL:
        return 404, error_body(10008, "Unknown Message")
    return 200, message_payload(msg)


async def edit_message(fake: FakeDiscord, call: Call) -> Answer:
    msg = fake.state.messages.get(call.params["message_id"])
    # Ephemeral responses cannot be reached with the bot token (discord-api-docs#3090).
    if msg is None or msg.deleted or msg.channel_id != call.params["channel_id"] or msg.flags & EPHEMERAL:
        return 404, error_body(10008, "Unknown Message")
    if msg.author["id"] != fake.state.bot["id"]:
        return 403, error_body(50005, "Cannot edit a message authored by another user")
    fake.bot_edits.setdefault(msg.id, []).append(time.monotonic())
    return _edit(fake, msg, call)


async def delete_message(fake: FakeDiscord, call: Call) -> Answer:
    msg = fake.state.messages.get(call.params["message_id"])
    if msg is None or msg.deleted or msg.channel_id != call.params["channel_id"]:
        return 404, error_body(10008, "Unknown Message")
    msg.deleted = True
    return 204, None


async def start_thread(fake: FakeDiscord, call: Call) -> Answer:
    parent = fake.state.channels.get(call.params["channel_id"])
    msg = fake.state.messages.get(call.params["message_id"])
    if parent is None or msg is None or msg.deleted:
        return 404, error_body(10008, "Unknown Message")
    if parent.type != 0:
        return 400, error_body(50024, "Cannot execute action on this channel type")
    if not parent.threads_allowed:
        return 403, error_body(50013, "Missing Permissions")
    if msg.id in fake.state.channels:
        return 400, error_body(160004, "A thread has already been created for this message")
    name = (call.body.json or {}).get("name", "")
    if not 1 <= len(name) <= 100:
        return 400, error_body(50035, "Invalid Form Body")
    thread = Channel(id=msg.id, guild_id=parent.guild_id, name=name, type=11, parent_id=parent.id,
                     owner_id=fake.state.bot["id"])
    fake.state.channels[thread.id] = thread
    msg.thread_id = thread.id
    payload = channel_payload(thread)
    await fake.gateway.dispatch("THREAD_CREATE", {**payload, "newly_created": True}, guild_id=parent.guild_id)
    return 201, payload


async def add_reaction(fake: FakeDiscord, call: Call) -> Answer:
    msg = fake.state.messages.get(call.params["message_id"])
    if msg is None or msg.deleted:
        return 404, error_body(10008, "Unknown Message")
    users = msg.reactions.setdefault(call.params["emoji_name"], [])
    if fake.state.bot["id"] not in users:
        users.append(fake.state.bot["id"])
    return 204, None


async def get_channel(fake: FakeDiscord, call: Call) -> Answer:
    channel = fake.state.channels.get(call.params["channel_id"])
    if channel is None:
        return 404, error_body(10003, "Unknown Channel")
    return 200, channel_payload(channel)


async def create_dm(fake: FakeDiscord, call: Call) -> Answer:
    recipient = str((call.body.json or {}).get("recipient_id"))
    for channel in fake.state.channels.values():
        if channel.type == 1 and channel.recipient_id == recipient:
            return 200, channel_payload(channel)
    channel = Channel(id=fake.state.ids.next(), guild_id=None, name="", type=1, recipient_id=recipient)
    fake.state.channels[channel.id] = channel
    return 200, channel_payload(channel)


# --- message bodies ----------------------------------------------------------------------------------
def _check_message(fake: FakeDiscord, body: dict[str, Any], call: Call) -> Answer | None:
    embeds = body.get("embeds") or []
    if len(body.get("content") or "") > CONTENT_LIMIT or len(embeds) > EMBEDS_LIMIT:
        return 400, error_body(50035, "Invalid Form Body")
    if sum(_embed_chars(e) for e in embeds) > EMBED_TOTAL:
        return 400, error_body(50035, "Invalid Form Body (embeds over 6000 characters)")
    if len(call.body.files) > FILES_LIMIT:
        return 400, error_body(50035, "Invalid Form Body (more than 10 files)")
    if any(len(f.data) > fake.upload_limit for f in call.body.files):
        fake.oversized_uploads += 1
        return 413, error_body(40005, "Request entity too large")
    return None


def _embed_chars(embed: dict[str, Any]) -> int:
    fields = embed.get("fields") or []
    texts = [embed.get("title"), embed.get("description"), (embed.get("footer") or {}).get("text"),
             (embed.get("author") or {}).get("name")]
    texts += [f.get("name") for f in fields] + [f.get("value") for f in fields]
    return sum(len(t or "") for t in texts)


def _new_message(fake: FakeDiscord, channel_id: str, body: dict[str, Any], call: Call, *,
                 webhook: bool = False) -> Message:
    msg = Message(id=fake.state.ids.next(), channel_id=channel_id, author=fake.state.bot,
                  created=fake.clock.now(), webhook_id=fake.state.app_id if webhook else None)
    _apply(fake, msg, body, call)
    fake.state.messages[msg.id] = msg
    return msg


def _edit(fake: FakeDiscord, msg: Message, call: Call) -> Answer:
    body = call.body.json or {}
    problem = _check_message(fake, body, call)
    if problem:
        return problem
    _apply_edit(fake, msg, body, call)
    return 200, message_payload(msg)


def _apply_edit(fake: FakeDiscord, msg: Message, body: dict[str, Any], call: Call) -> None:
    msg.flags &= ~LOADING
    msg.edited = fake.clock.now()
    _apply(fake, msg, body, call)


def _apply(fake: FakeDiscord, msg: Message, body: dict[str, Any], call: Call) -> None:
    if "content" in body:
        msg.content = body["content"] or ""
    if "embeds" in body:
        msg.embeds = [_embed_response(e) for e in body["embeds"] or []]
    if "components" in body:
        msg.components = _numbered(body["components"] or [])
    if "allowed_mentions" in body:
        msg.allowed_mentions = body["allowed_mentions"]
    if "attachments" in body or call.body.files:
        msg.attachments = _attachments(fake, msg, body.get("attachments"), call)


def _numbered(components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord returns them: each with a numeric ``id`` (1, 2 ... in order)."""
    counter = iter(range(1, 1000))
    rows = []
    for row in components:
        children = [{**child, "id": child.get("id") or next(counter)} for child in row.get("components", [])]
        rows.append({**row, "id": row.get("id") or next(counter), "components": children})
    return rows


def _embed_response(embed: dict[str, Any]) -> dict[str, Any]:
    out = {"type": "rich", **embed}
    for key in ("image", "thumbnail"):
        if key in out and isinstance(out[key], dict):
            out[key] = {"width": 64, "height": 64, **out[key], "proxy_url": out[key].get("url")}
    return out


def _attachments(fake: FakeDiscord, msg: Message, listed: list[dict[str, Any]] | None, call: Call) -> list[Attachment]:
    uploads = {f.field: f for f in call.body.files}
    kept = {a.id: a for a in msg.attachments}
    result: list[Attachment] = []
    for entry in listed if listed is not None else [{"id": i} for i in range(len(call.body.files))]:
        ref = str(entry.get("id"))
        upload = uploads.get(f"files[{ref}]")
        if upload is not None:
            result.append(fake.store_attachment(msg.channel_id, entry.get("filename") or upload.filename, upload.data))
        elif ref in kept:
            result.append(kept[ref])
    return result
