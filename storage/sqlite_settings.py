"""Settings, templates and the usage ledger: the small keyed tables of the SQLite store.

Each function takes the store's ``read`` (a query on the read connection) and ``write`` (one
statement through the group commit, returning the rows changed) so it needs no connection of its own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bot.jobs import UsageSummary

Read = Callable[[str, Sequence[Any]], Awaitable[list[Any]]]
Write = Callable[[str, Sequence[Any]], Awaitable[int]]

SETTING_SCOPES = ("server", "channel", "user")
TEMPLATE_SCOPES = ("server", "user")


async def get_settings(read: Read, scope: str, platform: str, scope_id: str) -> dict[str, Any]:
    _check_scope(scope, SETTING_SCOPES)
    rows = await read(
        "SELECT body FROM settings WHERE scope = ? AND platform = ? AND scope_id = ?",
        (scope, platform, scope_id),
    )
    return dict(json.loads(rows[0][0])) if rows else {}


async def set_settings(
    write: Write, scope: str, platform: str, scope_id: str, values: dict[str, Any]
) -> None:
    _check_scope(scope, SETTING_SCOPES)
    await write(
        "INSERT INTO settings (scope, platform, scope_id, body) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (scope, platform, scope_id) DO UPDATE SET body = excluded.body",
        (scope, platform, scope_id, json.dumps(values)),
    )


async def save_template(
    write: Write, platform: str, scope: str, scope_id: str, name: str, body: dict[str, Any]
) -> None:
    _check_scope(scope, TEMPLATE_SCOPES)
    await write(
        "INSERT INTO templates (platform, scope, scope_id, name, body) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (platform, scope, scope_id, name) DO UPDATE SET body = excluded.body",
        (platform, scope, scope_id, name, json.dumps(body)),
    )


async def delete_template(write: Write, platform: str, scope: str, scope_id: str, name: str) -> bool:
    _check_scope(scope, TEMPLATE_SCOPES)
    deleted = await write(
        "DELETE FROM templates WHERE platform = ? AND scope = ? AND scope_id = ? AND name = ?",
        (platform, scope, scope_id, name),
    )
    return deleted > 0


async def templates(read: Read, platform: str, scope: str, scope_id: str) -> dict[str, dict[str, Any]]:
    _check_scope(scope, TEMPLATE_SCOPES)
    rows = await read(
        "SELECT name, body FROM templates WHERE platform = ? AND scope = ? AND scope_id = ? "
        "ORDER BY name",
        (platform, scope, scope_id),
    )
    return {str(name): dict(json.loads(body)) for name, body in rows}


async def usage(read: Read, platform: str, server_id: str, day: str, user_id: str | None) -> UsageSummary:
    where, params = ("AND user_id = ?", (user_id,)) if user_id is not None else ("", ())
    rows = await read(
        "SELECT coalesce(sum(images), 0), coalesce(sum(cost_usd), 0.0) FROM usage_ledger "
        f"WHERE platform = ? AND server_id = ? AND day = ? {where}",
        (platform, server_id, day, *params),
    )
    images, cost = rows[0]
    return UsageSummary(day=day, images=int(images), cost_usd=float(cost))


async def usage_by_day(read: Read, platform: str, server_id: str, days: int) -> list[UsageSummary]:
    rows = await read(
        "SELECT day, sum(images), sum(cost_usd) FROM usage_ledger WHERE platform = ? AND server_id = ? "
        "GROUP BY day ORDER BY day DESC LIMIT ?",
        (platform, server_id, days),
    )
    return [UsageSummary(day=str(day), images=int(n), cost_usd=float(cost)) for day, n, cost in rows]


def _check_scope(scope: str, allowed: tuple[str, ...]) -> None:
    if scope not in allowed:
        raise ValueError(f"scope must be one of {', '.join(allowed)}, not {scope!r}")
