"""The moderation audit log in SQLite: appended rows, read newest first a page at a time."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.errors import InvalidRequest
from bot.moderation import AuditAction, AuditEntry
from storage.migrations import MIGRATIONS
from storage.sqlite import SqliteStorage


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(tmp_path / "bot.db")
    await storage.open()
    yield storage
    await storage.close()


def entry(n: int, *, user: str = "ann", server: str = "g1", action: AuditAction = AuditAction.REFUSED) -> AuditEntry:
    return AuditEntry(
        at=1000.0 + n, platform="discord", server_id=server, channel_id="art", user_id=user, user_name=user.title(),
        action=action, rule="blocked_word", term="gore", prompt=f"prompt {n}", job_id=f"job{n}" if n % 2 else None,
    )


async def test_rows_come_back_newest_first_a_page_at_a_time(store: SqliteStorage) -> None:
    for n in range(7):
        await store.record_audit(entry(n, user="ann" if n % 3 else "bob"))
    pages, cursor = [], None
    while True:
        page = await store.audit_log("discord", "g1", cursor=cursor, limit=3)
        pages.append([e.prompt for e in page.items])
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == [["prompt 6", "prompt 5", "prompt 4"], ["prompt 3", "prompt 2", "prompt 1"], ["prompt 0"]]
    first = (await store.audit_log("discord", "g1", limit=1)).items[0]
    assert first == AuditEntry(
        id=first.id, at=1006.0, platform="discord", server_id="g1", channel_id="art", user_id="bob",
        user_name="Bob", action=AuditAction.REFUSED, rule="blocked_word", term="gore", prompt="prompt 6",
    )
    bobs = await store.audit_log("discord", "g1", user_id="bob", limit=10)
    assert [e.prompt for e in bobs.items] == ["prompt 6", "prompt 3", "prompt 0"] and bobs.next_cursor is None


async def test_an_exact_page_has_no_next_cursor_and_servers_are_apart(store: SqliteStorage) -> None:
    for n in range(3):
        await store.record_audit(entry(n))
    await store.record_audit(entry(9, server="g2", action=AuditAction.SETTINGS_CHANGED))
    assert (await store.audit_log("discord", "g1", limit=3)).next_cursor is None
    [other] = (await store.audit_log("discord", "g2")).items
    assert other.action is AuditAction.SETTINGS_CHANGED and other.job_id == "job9"
    assert (await store.audit_log("slack", "g1")).items == []


async def test_a_damaged_cursor_is_a_friendly_error(store: SqliteStorage) -> None:
    with pytest.raises(InvalidRequest):
        await store.audit_log("discord", "g1", cursor="not a cursor")


async def test_the_table_comes_from_its_own_migration(store: SqliteStorage, tmp_path: Path) -> None:
    assert [m.version for m in MIGRATIONS][:2] == [1, 2] and MIGRATIONS[1].name == "moderation audit"
    with sqlite3.connect(tmp_path / "bot.db") as db:
        plan = db.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM moderation_audit WHERE platform = 'd' AND server_id = 'g' "
            "AND user_id = 'u' AND id < 5 ORDER BY id DESC LIMIT 3"
        ).fetchall()
        with pytest.raises(sqlite3.IntegrityError):
            db.execute("INSERT INTO moderation_audit (at, platform, server_id, user_id, action) "
                       "VALUES (0, 'd', 'g', 'u', 'deleted')")
    assert "moderation_audit_by_user" in " ".join(str(row) for row in plan)
