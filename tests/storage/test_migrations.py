"""Schema migrations: applied once, in order, each all-or-nothing, and recorded."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from bot.errors import ConfigError
from bot.jobs import Job, Origin
from bot.request import GenerationRequest
from storage.migrations import MIGRATIONS, Migration, applied_versions, migrate, split_statements
from storage.sqlite import SqliteStorage


@pytest.fixture
async def conn(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    connection = await aiosqlite.connect(tmp_path / "m.db", isolation_level=None)
    yield connection
    await connection.close()


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_a_fresh_database_gets_every_migration_once(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    assert await migrate(conn) == [m.version for m in MIGRATIONS]
    assert await migrate(conn) == []
    assert await applied_versions(conn) == [m.version for m in MIGRATIONS]
    assert {"jobs", "images", "favourites", "settings", "templates", "usage_ledger", "job_search"} <= tables(
        tmp_path / "m.db"
    )


def recorded(path: Path) -> list[tuple[int, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT version, applied_at FROM schema_migrations ORDER BY version").fetchall()


async def test_reopening_the_store_keeps_data_and_redoes_no_migration(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    origin = Origin(platform="web", server_id="local", channel_id="c", user_id="u")
    job = Job(id="j1", origin=origin, request=GenerationRequest(prompt="x"), provider="p")
    store = SqliteStorage(path)
    await store.open()
    await store.insert_jobs([job])
    await store.close()
    first = recorded(path)

    reopened = SqliteStorage(path)
    await reopened.open()
    try:
        assert await reopened.get_job("j1") == job
    finally:
        await reopened.close()
    assert recorded(path) == first
    assert [version for version, _ in first] == [m.version for m in MIGRATIONS]


async def test_only_new_migrations_run_on_an_existing_database(conn: aiosqlite.Connection) -> None:
    await migrate(conn)
    await conn.execute("INSERT INTO settings VALUES ('user', 'web', 'u', '{}')")
    later = (*MIGRATIONS, Migration(len(MIGRATIONS) + 1, "notes", "ALTER TABLE jobs ADD COLUMN note TEXT;"))
    assert await migrate(conn, later) == [len(MIGRATIONS) + 1]
    assert await migrate(conn, later) == []
    rows = await conn.execute_fetchall("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [tuple(r) for r in rows][-1] == (len(MIGRATIONS) + 1, "notes")
    assert list(await conn.execute_fetchall("SELECT count(*) FROM settings")) == [(1,)]


async def test_a_failing_migration_leaves_no_trace(conn: aiosqlite.Connection, tmp_path: Path) -> None:
    script = "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);"
    broken = Migration(len(MIGRATIONS) + 1, "broken", script)
    with pytest.raises(sqlite3.OperationalError):
        await migrate(conn, (*MIGRATIONS, broken))
    assert await applied_versions(conn) == [m.version for m in MIGRATIONS]
    assert "half_done" not in tables(tmp_path / "m.db")
    assert not conn.in_transaction


async def test_a_database_from_a_newer_version_is_refused(conn: aiosqlite.Connection) -> None:
    future = (*MIGRATIONS, Migration(99, "from-the-future", "CREATE TABLE f (x);"))
    await migrate(conn, future)
    with pytest.raises(ConfigError, match="newer"):
        await migrate(conn)


@pytest.mark.parametrize("versions", [(1, 1), (2, 1), (0,)])
async def test_migration_numbers_must_increase(conn: aiosqlite.Connection, versions: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        await migrate(conn, [Migration(v, f"m{v}", "SELECT 1;") for v in versions])


def test_statements_are_split_but_trigger_bodies_stay_whole() -> None:
    script = """
    CREATE TABLE a (x); -- a comment; with a semicolon
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        INSERT INTO a VALUES (1);
        INSERT INTO a VALUES (2);
    END;
    """
    statements = split_statements(script)
    assert len(statements) == 2
    assert statements[1].startswith("CREATE TRIGGER") and statements[1].endswith("END;")
    with pytest.raises(ValueError):
        split_statements("CREATE TABLE b (x)")
