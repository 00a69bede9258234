"""Text between Slack and the core: what users typed made plain, what we echo made harmless.

Slack sends ``&``, ``<`` and ``>`` escaped, and (with "escape channels, users and links" on)
mentions and links as ``<@U1|ann>``, ``<#C1|general>``, ``<!here>`` or ``<https://x|label>``.
:func:`plain` turns that into the plain text the core parses. Going out, :func:`escape` escapes
``&``, ``<`` and ``>``, so nothing a user typed can form a mention, a link or a broadcast such as
``<!channel>``, and breaks ``@channel``, ``@here`` and ``@everyone`` with a word joiner in case a
workspace parses bare names. Every echoed string also goes out with ``verbatim`` text objects.
"""

from __future__ import annotations

import re

_MARKUP = re.compile(r"<([^<>\n]*)>")
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def plain(text: str) -> str:
    """Slack's encoding of a message or command text, as the plain text the user meant."""
    return _unescape(_MARKUP.sub(_readable, text))


def _readable(match: re.Match[str]) -> str:
    target, _, label = match.group(1).partition("|")
    if target.startswith(("@", "#")):
        return target[0] + (label or target[1:])
    if target.startswith("!"):
        if label:
            return label if label.startswith("@") else "@" + label
        return "@" + target[1:].split("^", 1)[0]
    return label or target


def _unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape(text: str) -> str:
    """``text`` shown literally in mrkdwn: no mentions, broadcasts or links can come out of it."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub(lambda m: "@" + _WORD_JOINER + m.group(1), escaped)


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, never inside an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    amp = cut.rfind("&")
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"


def shown(text: str, limit: int) -> str:
    """User text escaped, then clipped to ``limit``."""
    return clip(escape(text), limit)
