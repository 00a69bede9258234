"""The advanced-options modal: prompt, negative prompt, aspect, count, style, provider and channel.

Opened by the ``imagine_advanced`` shortcut, by ``/imagine`` with no text, or from the App Home;
Slack gives each a ``trigger_id`` valid for 3 s, so the view is opened right after the ack. On
submit the fields become flags (:func:`~adapters.slack.commands.prompt_with_options`) and the
job follows the usual flow in the chosen channel; refusals come back as ephemeral messages there.
"""

from __future__ import annotations

from typing import Any

from adapters.slack import actions
from adapters.slack.commands import prompt_with_options
from adapters.slack.context import SlackContext
from adapters.slack.reply import via_ephemeral
from adapters.slack.text import clip
from bot.jobs import Job, Origin
from bot.request import MAX_COUNT

CALLBACK_ID = "imagine_modal"
SHORTCUT_ID = "imagine_advanced"
#: Block Kit caps: a plain-text input takes at most 3000 characters, a select 100 options.
PROMPT_LIMIT = 3000
OPTIONS_LIMIT = 100
ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3", "21:9")


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def _option(label: str, value: str) -> dict[str, Any]:
    return {"text": _plain(clip(label, 75)), "value": value[:150]}


def _select(block_id: str, label: str, options: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "type": "input", "block_id": block_id, "optional": True, "label": _plain(label),
        "element": {"type": "static_select", "action_id": "value",
                    "options": [_option(text, value) for text, value in options[:OPTIONS_LIMIT]]},
    }


def _text_input(block_id: str, label: str, *, optional: bool, multiline: bool) -> dict[str, Any]:
    return {
        "type": "input", "block_id": block_id, "optional": optional, "label": _plain(label),
        "element": {"type": "plain_text_input", "action_id": "value", "multiline": multiline,
                    "max_length": PROMPT_LIMIT},
    }


def modal_view(styles: list[tuple[str, str]], providers: list[str], channel: str | None) -> dict[str, Any]:
    """The modal; ``channel`` (where it was opened from) is preselected when known."""
    where: dict[str, Any] = {
        "type": "conversations_select", "action_id": "value", "default_to_current_conversation": True,
        "filter": {"include": ["public", "private", "im", "mpim"], "exclude_bot_users": True},
    }
    if channel:
        where["initial_conversation"] = channel
    layout = [
        _text_input("prompt", "Prompt (flags like --seed 7 work too)", optional=False, multiline=True),
        _text_input("negative", "Leave out (negative prompt)", optional=True, multiline=False),
        _select("aspect", "Aspect ratio", [(a, a) for a in ASPECTS]),
        _select("count", "Images", [(str(n), str(n)) for n in range(1, MAX_COUNT + 1)]),
    ]
    if styles:
        layout.append(_select("style", "Style", [(f"{n} · {d}" if d else n, n) for n, d in styles]))
    layout.append(_select("provider", "Provider", [(p, p) for p in providers]))
    layout.append({"type": "input", "block_id": "channel", "label": _plain("Post in"), "element": where})
    return {
        "type": "modal", "callback_id": CALLBACK_ID, "title": _plain("Imagine"), "submit": _plain("Queue"),
        "close": _plain("Cancel"), "private_metadata": channel or "", "blocks": layout,
    }


async def open_modal(ctx: SlackContext, trigger_id: str, origin: Origin, channel: str | None) -> None:
    view = modal_view(await ctx.service.styles(origin), list(ctx.service.providers), channel)
    await ctx.client.views_open(trigger_id=trigger_id, view=view)


def submitted(view: dict[str, Any]) -> dict[str, str]:
    """The modal's answers: block id to the typed text, chosen option or conversation."""
    answers: dict[str, str] = {}
    for block_id, fields in ((view.get("state") or {}).get("values") or {}).items():
        field = (fields or {}).get("value") or {}
        value = (field.get("value") or (field.get("selected_option") or {}).get("value")
                 or field.get("selected_conversation"))
        if isinstance(value, str) and value.strip():
            answers[str(block_id)] = value.strip()
    return answers


async def on_submit(ctx: SlackContext, body: dict[str, Any]) -> None:
    """Queue what the modal asked for, after the ack closed it."""
    view = body.get("view") or {}
    answers = submitted(view)
    user = body.get("user") or {}
    channel = answers.get("channel") or str(view.get("private_metadata") or "")
    if not channel or "prompt" not in answers:
        return
    origin = await ctx.identity.origin(
        team_id=str((body.get("team") or {}).get("id") or ctx.team_id), channel_id=channel,
        user_id=str(user["id"]), user_name=str(user.get("username") or user.get("name") or ""),
    )
    text = prompt_with_options(
        answers["prompt"], negative=answers.get("negative"), aspect=answers.get("aspect"),
        count=answers.get("count"), style=answers.get("style"), provider=answers.get("provider"),
    )

    async def submit(refs: dict[str, str]) -> list[Job]:
        return await ctx.service.submit(text, origin, refs=refs)

    await actions.submit_flow(ctx, channel, via_ephemeral(ctx.client, channel, origin.user_id), submit)
