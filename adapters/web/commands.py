"""The commands typed in the playground's prompt box: ``/imagine`` and the other chat commands.

Each returns a small JSON-able reply the page renders as a bot message in the channel; jobs it
queues appear as cards that the surface then updates live. Errors are
:class:`~bot.errors.UserFacingError` and become friendly messages at the HTTP edge.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from adapters.web import texts
from adapters.web.state import WebState
from adapters.web.views import job_json
from bot import messages
from bot.errors import InvalidRequest
from bot.jobs import JobStatus, Origin
from bot.prompt import FLAGS
from bot.settings import SCOPES, SETTING_KEYS

Reply = dict[str, Any]
Handler = Callable[[WebState, Origin, str], Awaitable[Reply]]


async def run_command(state: WebState, origin: Origin, text: str) -> Reply:
    """Run one line from the prompt box; plain text is a prompt, as if after ``/imagine``."""
    text = text.strip()
    if text.startswith("/"):
        name, _, rest = text[1:].partition(" ")
        name = name.lower()
    else:
        name, rest = "imagine", text
    handler = COMMANDS.get(name)
    if handler is None:
        raise InvalidRequest(texts.unknown_command(name))
    return await handler(state, origin, rest.strip())


async def _imagine(state: WebState, origin: Origin, rest: str) -> Reply:
    if not rest:
        raise InvalidRequest(texts.EMPTY_PROMPT)
    jobs = await state.app.service.submit(rest, origin)
    return {"kind": "jobs", "jobs": [job_json(job) for job in jobs]}


async def _gallery(state: WebState, origin: Origin, rest: str) -> Reply:
    path = state.links.path(origin.platform, origin.channel_id, now=state.app.clock.now())
    return {"kind": "link", "text": texts.gallery_link(origin.channel_id), "url": path}


async def _history(state: WebState, origin: Origin, rest: str) -> Reply:
    page = await state.app.service.history(origin.platform, origin.channel_id, limit=10)
    items = [
        {"title": job.request.prompt, "detail": f"{job.origin.user_name or job.origin.user_id} · "
                                                f"{job.status.value} · {job.id}"}
        for job in page.items
    ]
    return {"kind": "list", "title": f"Latest in #{origin.channel_id}", "items": items,
            "empty": texts.NO_HISTORY}


async def _queue(state: WebState, origin: Origin, rest: str) -> Reply:
    entries = await state.app.service.my_queue(origin)
    items = []
    for entry in entries:
        if entry.job.status is JobStatus.RUNNING:
            detail = messages.running(None, "")
        else:
            detail = messages.queued(entry.position, entry.eta_seconds)
        items.append({"title": entry.job.request.prompt, "detail": f"{detail} · {entry.job.id}"})
    return {"kind": "list", "title": "Your queue", "items": items, "empty": texts.NOTHING_TO_CANCEL}


async def _cancel(state: WebState, origin: Origin, rest: str) -> Reply:
    job_id = rest.split()[0] if rest else None
    if job_id is None:
        entries = await state.app.service.my_queue(origin)
        if not entries:
            raise InvalidRequest(texts.NOTHING_TO_CANCEL)
        job_id = max(entries, key=lambda e: (e.job.created_at, e.job.id)).job.id
    job = await state.app.service.cancel(job_id, origin)
    return {"kind": "note", "text": texts.cancelled(job.id)}


async def _styles(state: WebState, origin: Origin, rest: str) -> Reply:
    styles = await state.app.service.styles(origin)
    items = [{"title": name, "detail": description} for name, description in styles]
    return {"kind": "list", "title": "Styles (use --style NAME)", "items": items, "empty": texts.NO_STYLES}


async def _settings(state: WebState, origin: Origin, rest: str) -> Reply:
    words = rest.split()
    scope = "user"
    if words and words[0] in SCOPES:
        scope = words.pop(0)
    service = state.app.service
    if words:
        values: dict[str, Any] = {}
        for word in words:
            key, sep, value = word.partition("=")
            if not sep:
                raise InvalidRequest(messages.unknown_setting(word, SETTING_KEYS))
            values[key] = value
        settings = await service.set_settings(origin, values, scope)
        title = texts.settings_saved(scope)
    else:
        settings = await service.get_settings(origin, scope)
        title = f"{scope.capitalize()} settings (change with /settings {scope} key=value)"
    shown = settings.model_dump()
    items = [
        {"title": key, "detail": "default" if shown[key] is None else str(shown[key])} for key in SETTING_KEYS
    ]
    return {"kind": "list", "title": title, "items": items, "empty": ""}


async def _audit(state: WebState, origin: Origin, rest: str) -> Reply:
    """The moderation log; the playground has no admins, so this explains who may read it."""
    page = await state.app.service.audit_log(origin)
    items = [
        {"title": messages.audit_line(e.action.value, e.rule, e.term), "detail": f"{e.user_id} · {e.prompt}"}
        for e in page.items
    ]
    return {"kind": "list", "title": "Moderation log", "items": items, "empty": messages.NO_AUDIT}


async def _help(state: WebState, origin: Origin, rest: str) -> Reply:
    items = [{"title": usage, "detail": what} for usage, what in texts.COMMANDS]
    items += [
        {"title": " ".join(filter(None, ["--" + flag.name, flag.value])), "detail": flag.help} for flag in FLAGS
    ]
    return {"kind": "list", "title": "Commands and prompt flags", "items": items, "empty": ""}


COMMANDS: dict[str, Handler] = {
    "imagine": _imagine,
    "gallery": _gallery,
    "history": _history,
    "queue": _queue,
    "cancel": _cancel,
    "styles": _styles,
    "settings": _settings,
    "audit": _audit,
    "help": _help,
}
