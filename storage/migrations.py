"""Numbered, forward-only schema migrations for the SQLite store.

Each migration runs in its own ``BEGIN IMMEDIATE`` transaction together with the row that records
it in ``schema_migrations``, so a crash mid-migration leaves the previous version intact. Opening
an up-to-date database costs one ``SELECT``. A migration is never edited once released: change
the schema by appending a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

import aiosqlite

from bot.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


_INITIAL = """
-- seq is an explicit INTEGER PRIMARY KEY so rowids survive VACUUM: job_search refers to them.
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    thread_id TEXT,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    -- The rest of the Origin, so a job recovered after a restart is judged as it was submitted.
    roles TEXT NOT NULL DEFAULT '[]',
    is_admin INTEGER NOT NULL DEFAULT 0,
    nsfw_channel INTEGER NOT NULL DEFAULT 0,
    request TEXT NOT NULL,
    provider TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    delivered_at REAL,
    error TEXT,
    message_refs TEXT NOT NULL DEFAULT '{}',
    batch_id TEXT,
    deleted INTEGER NOT NULL DEFAULT 0,
    cache_key TEXT
);

-- Partial indexes: the queries that use them repeat these WHERE terms verbatim.
CREATE INDEX jobs_unfinished ON jobs (created_at, id) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_undelivered ON jobs (created_at, id)
    WHERE delivered_at IS NULL AND status IN ('succeeded', 'failed', 'cancelled') AND deleted = 0;
CREATE INDEX jobs_user_status ON jobs (platform, user_id, status, created_at, id);
CREATE INDEX jobs_channel_time ON jobs (platform, channel_id, created_at, id);
CREATE INDEX jobs_channel_user_time ON jobs (platform, channel_id, user_id, created_at, id);
CREATE INDEX jobs_cache_key ON jobs (cache_key) WHERE cache_key IS NOT NULL;

CREATE TABLE images (
    job_id TEXT NOT NULL REFERENCES jobs (id),
    idx INTEGER NOT NULL CHECK (idx >= 0),
    sha256 TEXT NOT NULL CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0),
    mime TEXT NOT NULL,
    seed INTEGER,
    provider TEXT NOT NULL,
    model TEXT NOT NULL,
    revised_prompt TEXT,
    cost_usd REAL NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
    created_at REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

CREATE INDEX images_provider ON images (provider, job_id);

-- seq orders a user's favourites newest first without a clock in the storage layer.
CREATE TABLE favourites (
    seq INTEGER PRIMARY KEY,
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    job_id TEXT NOT NULL,
    image_index INTEGER NOT NULL,
    UNIQUE (platform, user_id, job_id, image_index),
    FOREIGN KEY (job_id, image_index) REFERENCES images (job_id, idx)
);

CREATE INDEX favourites_by_user ON favourites (platform, user_id, seq);
CREATE INDEX favourites_by_image ON favourites (job_id, image_index);

CREATE TABLE settings (
    scope TEXT NOT NULL CHECK (scope IN ('server', 'channel', 'user')),
    platform TEXT NOT NULL,
    scope_id TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (scope, platform, scope_id)
) WITHOUT ROWID;

CREATE TABLE templates (
    platform TEXT NOT NULL,
    scope TEXT NOT NULL CHECK (scope IN ('server', 'user')),
    scope_id TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (platform, scope, scope_id, name)
) WITHOUT ROWID;

-- One entry per succeeded job (keyed by job, so a repeated write cannot count twice).
CREATE TABLE usage_ledger (
    job_id TEXT NOT NULL PRIMARY KEY REFERENCES jobs (id),
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    day TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]'),
    images INTEGER NOT NULL CHECK (images >= 0),
    cost_usd REAL NOT NULL CHECK (cost_usd >= 0)
) WITHOUT ROWID;

-- Covering: a daily-cap check reads only this index.
CREATE INDEX usage_by_day ON usage_ledger (platform, server_id, day, user_id, images, cost_usd);

CREATE VIRTUAL TABLE job_search USING fts5 (
    prompt, negative_prompt, tokenize = 'unicode61 remove_diacritics 2'
);

-- A trigger rather than application code keeps the index right whoever writes the jobs table.
CREATE TRIGGER jobs_search_insert AFTER INSERT ON jobs BEGIN
    INSERT INTO job_search (rowid, prompt, negative_prompt)
    VALUES (
        new.seq,
        json_extract(new.request, '$.prompt'),
        coalesce(json_extract(new.request, '$.negative_prompt'), '')
    );
END;

CREATE TRIGGER jobs_search_delete AFTER DELETE ON jobs BEGIN
    DELETE FROM job_search WHERE rowid = old.seq;
END;
"""

_MODERATION_AUDIT = """
-- Who was refused, overridden or flagged by moderation, and who changed its settings. Rows are only
-- ever appended; id orders them (newest last) and is the page cursor. job_id has no foreign key:
-- a refused prompt has no job, and the log must outlive any clean-up of old jobs.
CREATE TABLE moderation_audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    platform TEXT NOT NULL,
    server_id TEXT NOT NULL,
    channel_id TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL DEFAULT '',
    action TEXT NOT NULL CHECK (action IN ('refused', 'overridden', 'flagged', 'settings_changed')),
    rule TEXT NOT NULL DEFAULT '',
    term TEXT NOT NULL DEFAULT '',
    prompt TEXT NOT NULL DEFAULT '' CHECK (length(prompt) <= 300),
    job_id TEXT
);

CREATE INDEX moderation_audit_by_server ON moderation_audit (platform, server_id, id);
CREATE INDEX moderation_audit_by_user ON moderation_audit (platform, server_id, user_id, id);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL),
    Migration(2, "moderation audit", _MODERATION_AUDIT),
)

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
)
"""


def split_statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies contain ``;`` and stay whole).

    ``executescript`` would be simpler, but it commits any open transaction first, which would
    take the migration out of its transaction.
    """
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip().strip(";").strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement at the end of a migration: {buffer.strip()[:80]!r}")
    return statements


async def applied_versions(conn: aiosqlite.Connection) -> list[int]:
    """The versions recorded in ``schema_migrations``, ascending."""
    await conn.execute(_BOOKKEEPING)
    rows = await conn.execute_fetchall("SELECT version FROM schema_migrations ORDER BY version")
    return [int(row[0]) for row in rows]


async def migrate(conn: aiosqlite.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Apply the migrations not yet recorded, in order; return the versions applied.

    ``conn`` must be in autocommit mode (``isolation_level=None``). Raises :class:`ConfigError`
    when the database was written by a newer imaginebot (it has versions this code lacks).
    """
    _check_sequence(migrations)
    done = set(await applied_versions(conn))
    known = {m.version for m in migrations}
    unknown = sorted(done - known)
    if unknown:
        raise ConfigError(
            f"the database has schema version {unknown[-1]}, newer than this imaginebot knows "
            f"({max(known, default=0)}); upgrade imaginebot or point storage.dir elsewhere"
        )
    applied: list[int] = []
    for migration in migrations:
        if migration.version not in done and await _apply(conn, migration):
            applied.append(migration.version)
    return applied


async def _apply(conn: aiosqlite.Connection, migration: Migration) -> bool:
    await conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have applied it between our read and our write lock.
        rows = await conn.execute_fetchall(
            "SELECT 1 FROM schema_migrations WHERE version = ?", (migration.version,)
        )
        if list(rows):
            await conn.execute("ROLLBACK")
            return False
        for statement in split_statements(migration.sql):
            await conn.execute(statement)
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", (migration.version, migration.name)
        )
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    return True


def _check_sequence(migrations: Sequence[Migration]) -> None:
    versions = [m.version for m in migrations]
    if versions != sorted(set(versions)) or any(v < 1 for v in versions):
        raise ValueError(f"migration versions must be positive and strictly increasing, got {versions}")
