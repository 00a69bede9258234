"""Block Kit limits the fake enforces on every message, ephemeral answer and view it receives.

From the Block Kit reference (and slack_sdk's models, research/platforms.md §6): at most 50
blocks in a message and 100 in a view, 25 elements in an actions block, 10 in a context block;
a button's text at most 75 characters, its ``action_id`` 255 (unique within its block) and
``value`` 2000; a section's
text 3000; a message's text 40,000; a modal's title, submit and close labels 24; a plain-text
input at most 3000 characters; a select at most 100 options.
"""

from __future__ import annotations

from typing import Any

MESSAGE_TEXT = 40_000
_TEXT_TYPES = ("plain_text", "mrkdwn")


def check_message(text: Any, layout: Any) -> list[str]:
    problems: list[str] = []
    if text is not None and (not isinstance(text, str) or len(text) > MESSAGE_TEXT):
        problems.append("text is not a string of at most 40000 characters")
    if layout is None:
        return problems
    return problems + check_blocks(layout, limit=50)


def check_view(view: Any) -> list[str]:
    if not isinstance(view, dict) or view.get("type") not in ("modal", "home"):
        return ["a view is an object of type modal or home"]
    problems = check_blocks(view.get("blocks"), limit=100)
    if view["type"] == "modal":
        for key in ("title", "submit", "close"):
            if key in view:
                problems += _text(view[key], 24, f"view {key}", plain=True)
        if "title" not in view:
            problems.append("a modal needs a title")
    if len(str(view.get("private_metadata", ""))) > 3000:
        problems.append("private_metadata is longer than 3000")
    if len(str(view.get("callback_id", ""))) > 255:
        problems.append("callback_id is longer than 255")
    return problems


def check_blocks(layout: Any, *, limit: int) -> list[str]:
    if not isinstance(layout, list) or len(layout) > limit:
        return [f"blocks must be a list of at most {limit}"]
    problems: list[str] = []
    block_ids: set[str] = set()
    for i, block in enumerate(layout):
        where = f"block {i}"
        if not isinstance(block, dict) or "type" not in block:
            problems.append(f"{where} has no type")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if len(str(block_id)) > 255 or block_id in block_ids:
                problems.append(f"{where}: block_id too long or repeated")
            block_ids.add(str(block_id))
        action_ids: list[str] = []
        problems += _block(block, where, action_ids)
        if len(action_ids) != len(set(action_ids)):
            problems.append(f"{where}: action_ids repeat within the block")
    return problems


def _block(block: dict[str, Any], where: str, action_ids: list[str]) -> list[str]:
    kind = block["type"]
    problems: list[str] = []
    if kind == "section":
        if "text" in block:
            problems += _text(block["text"], 3000, where)
        if "accessory" in block:
            problems += _element(block["accessory"], where, action_ids)
    elif kind == "context":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 10:
            problems.append(f"{where}: a context holds 1 to 10 elements")
        for element in elements:
            problems += _text(element, 3000, where) if element.get("type") in _TEXT_TYPES else []
    elif kind == "actions":
        elements = block.get("elements") or []
        if not 1 <= len(elements) <= 25:
            problems.append(f"{where}: an actions block holds 1 to 25 elements")
        for element in elements:
            problems += _element(element, where, action_ids)
    elif kind == "header":
        problems += _text(block.get("text"), 150, where, plain=True)
    elif kind == "image":
        if len(str(block.get("image_url", ""))) > 3000 or not block.get("alt_text"):
            problems.append(f"{where}: an image needs image_url (at most 3000) and alt_text")
    elif kind == "input":
        problems += _text(block.get("label"), 2000, where, plain=True)
        problems += _element(block.get("element") or {}, where, action_ids)
    elif kind != "divider":
        problems.append(f"{where}: unexpected block type {kind!r}")
    return problems


def _element(element: dict[str, Any], where: str, action_ids: list[str]) -> list[str]:
    problems: list[str] = []
    action_id = element.get("action_id")
    if action_id is not None:
        if len(str(action_id)) > 255:
            problems.append(f"{where}: action_id longer than 255")
        action_ids.append(str(action_id))
    kind = element.get("type")
    if kind == "button":
        problems += _text(element.get("text"), 75, where, plain=True)
        if len(str(element.get("value", ""))) > 2000:
            problems.append(f"{where}: button value longer than 2000")
        if len(str(element.get("url", ""))) > 3000:
            problems.append(f"{where}: button url longer than 3000")
        if element.get("style") not in (None, "primary", "danger"):
            problems.append(f"{where}: button style {element.get('style')!r}")
    elif kind == "plain_text_input":
        if not 1 <= int(element.get("max_length", 3000)) <= 3000:
            problems.append(f"{where}: plain_text_input max_length must be 1-3000")
    elif kind == "static_select":
        options = element.get("options") or []
        if not 1 <= len(options) <= 100:
            problems.append(f"{where}: a select holds 1 to 100 options")
        for option in options:
            problems += _text(option.get("text"), 75, where, plain=True)
            if len(str(option.get("value", ""))) > 150:
                problems.append(f"{where}: option value longer than 150")
    elif kind not in ("conversations_select",):
        problems.append(f"{where}: unexpected element type {kind!r}")
    return problems


def _text(obj: Any, limit: int, where: str, *, plain: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in (("plain_text",) if plain else _TEXT_TYPES):
        return [f"{where}: a {'plain_text' if plain else 'text'} object is required"]
    text = obj.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= limit:
        return [f"{where}: text must be 1 to {limit} characters"]
    if obj["type"] == "plain_text" and "verbatim" in obj:
        return [f"{where}: verbatim is only for mrkdwn"]
    return []
