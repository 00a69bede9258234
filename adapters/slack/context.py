"""What every Slack handler needs, built once in :func:`adapters.slack.app.launch`.

Listeners acknowledge first and hand their work to :meth:`SlackContext.spawn`, which keeps the
tasks (so none is garbage-collected mid-flight), logs what they raise and cancels what is left
when the surface closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.identity import Identity
from adapters.slack.lookup import MessageIndex
from adapters.slack.surface import SlackSurface
from bot.app import App
from bot.config import SlackConfig
from bot.links import GalleryLinks
from bot.service import ImagineService

log = logging.getLogger(__name__)

#: Told to the user when a handler fails unexpectedly (after logging it).
Fail = Callable[[], Awaitable[None]]


@dataclass
class SlackContext:
    """The app, the Slack client and config, the surface and the lookups, shared by all handlers."""

    app: App
    config: SlackConfig
    client: AsyncWebClient
    session: aiohttp.ClientSession
    surface: SlackSurface
    identity: Identity
    index: MessageIndex
    links: GalleryLinks
    #: The bot's own user id and workspace, from ``auth.test``.
    bot_user_id: str
    team_id: str
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @property
    def service(self) -> ImagineService:
        return self.app.service

    def spawn(self, work: Coroutine[Any, Any, None], *, name: str, fail: Fail | None = None) -> None:
        """Run a listener's work after its ack; ``fail`` tells the user when it crashes."""
        task = asyncio.get_running_loop().create_task(_guarded(work, name, fail), name=f"slack:{name}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def aclose(self, grace_seconds: float = 5.0) -> None:
        """Give running work ``grace_seconds`` to finish, then cancel it."""
        pending = set(self.tasks)
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


async def _guarded(work: Coroutine[Any, Any, None], name: str, fail: Fail | None) -> None:
    try:
        await work
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("slack: %s failed", name)
        if fail is not None:
            try:
                await fail()
            except Exception as exc:  # telling the user is best effort; the failure is logged above
                log.info("slack: could not tell the user that %s failed (%s)", name, exc.__class__.__name__)
