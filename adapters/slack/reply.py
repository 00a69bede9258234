"""Private answers: through an interaction's ``response_url``, or ``chat.postEphemeral``.

A command or a button press carries a ``response_url`` (five uses in thirty minutes; each
interaction here uses it once or twice, and never for cards). Reactions and modal submissions
carry none, so their answers are ephemeral messages in the channel, or a DM where the bot cannot
post ephemerally.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from adapters.slack import blocks
from adapters.slack.surface import slack_error

log = logging.getLogger(__name__)



class Reply(Protocol):
    """Tell the person who asked: a plain sentence, shown as it is or by ``layout``'s blocks."""

    async def __call__(self, text: str, layout: blocks.Blocks | None = None, *, replace: bool = False) -> None: ...


def via_response_url(session: aiohttp.ClientSession, url: str) -> Reply:
    """Answers through ``response_url``: ephemeral, or replacing the message a button was on."""

    async def reply(text: str, layout: blocks.Blocks | None = None, *, replace: bool = False) -> None:
        fallback, default = blocks.notice(text)
        body: dict[str, Any] = {"text": fallback, "blocks": layout or default, "response_type": "ephemeral"}
        body["replace_original"] = replace
        webhook = AsyncWebhookClient(url, session=session, retry_handlers=[AsyncRateLimitErrorRetryHandler()])
        response = await webhook.send_dict(body)
        if response.status_code != 200:
            log.info("response_url refused the answer (%s %s)", response.status_code, response.body[:100])

    return reply


def via_ephemeral(client: AsyncWebClient, channel: str, user: str, *, thread_ts: str | None = None) -> Reply:
    """Answers as ephemeral messages in ``channel``; a DM when the bot cannot post there."""

    async def reply(text: str, layout: blocks.Blocks | None = None, *, replace: bool = False) -> None:
        fallback, default = blocks.notice(text)
        extra: dict[str, Any] = {"thread_ts": thread_ts} if thread_ts else {}
        try:
            await client.chat_postEphemeral(channel=channel, user=user, text=fallback, blocks=layout or default,
                                            **extra)
            return
        except SlackApiError as exc:
            log.info("no ephemeral answer in %s (%s); sending a DM", channel, slack_error(exc))
        try:
            opened = await client.conversations_open(users=user)
            await client.chat_postMessage(channel=str(opened["channel"]["id"]), text=fallback,
                                          blocks=layout or default)
        except SlackApiError as exc:
            log.info("could not answer user %s at all (%s)", user, slack_error(exc))

    return reply
