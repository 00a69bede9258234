"""The moderation audit log of the SQLite store: append a row, read a server's rows newest first.

Like :mod:`storage.sqlite_settings`, the functions take the store's ``read`` and ``write``.
Pages are keyset-paginated on the row id (rows are only ever appended), fetching one row more
than they show so ``next_cursor`` is ``None`` exactly on the last page.
"""

from __future__ import annotations

from typing import Any

from bot.jobs import Page
from bot.moderation import AuditAction, AuditEntry
from storage.sqlite_rows import decode_cursor, encode_cursor
from storage.sqlite_settings import Read, Write

_COLUMNS = "id, at, platform, server_id, channel_id, user_id, user_name, action, rule, term, prompt, job_id"


async def record_audit(write: Write, entry: AuditEntry) -> None:
    await write(
        "INSERT INTO moderation_audit (at, platform, server_id, channel_id, user_id, user_name, action, rule, "
        "term, prompt, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (entry.at, entry.platform, entry.server_id, entry.channel_id, entry.user_id, entry.user_name,
         entry.action.value, entry.rule, entry.term, entry.prompt[:300], entry.job_id),
    )


async def audit_log(
    read: Read, platform: str, server_id: str, *, cursor: str | None, limit: int, user_id: str | None
) -> Page[AuditEntry]:
    if limit < 1:
        raise ValueError(f"a page holds at least one item, not {limit}")
    where = ["platform = ?", "server_id = ?"]
    params: list[Any] = [platform, server_id]
    if user_id is not None:
        where.append("user_id = ?")
        params.append(user_id)
    if cursor is not None:
        (last,) = decode_cursor(cursor, (int,))
        where.append("id < ?")
        params.append(last)
    rows = await read(
        f"SELECT {_COLUMNS} FROM moderation_audit WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?",
        (*params, limit + 1),
    )
    entries = [_entry(row) for row in rows[:limit]]
    more = len(rows) > limit and bool(entries)
    return Page(entries, encode_cursor(entries[-1].id) if more else None)


def _entry(row: Any) -> AuditEntry:
    id_, at, platform, server_id, channel_id, user_id, user_name, action, rule, term, prompt, job_id = row
    return AuditEntry(
        id=int(id_), at=float(at), platform=platform, server_id=server_id, channel_id=channel_id,
        user_id=user_id, user_name=user_name, action=AuditAction(action), rule=rule, term=term,
        prompt=prompt, job_id=job_id,
    )
