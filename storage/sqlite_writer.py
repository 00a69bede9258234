"""Group commit: concurrent writes share one SQLite transaction and one executemany per statement.

A write is data, a :class:`Write` of :class:`Statement` s, not code. Callers hand theirs to
:meth:`GroupCommitWriter.submit`; one writer task takes every write waiting at that moment and
commits them in one ``BEGIN IMMEDIATE ... COMMIT``, resolving each caller's await after the commit.

Why data: each aiosqlite call is a round trip to the connection's thread, and those round trips,
not SQLite, are what limits a busy bot. So the batch is *merged*: the first statements of all its
writes are grouped by SQL text and each group runs as one ``executemany``, then the second
statements, and so on. Two hundred workers each finishing a job cost a handful of round trips,
not six hundred. Reordering is sound because writes in one batch were all in flight at once, so
any order among them is one their callers could have seen; each write's own statements keep
their order.

Merging needs each statement to declare ``expect``: how many rows it changes when all is well,
and never more (an ``UPDATE ... WHERE id = ?`` changes one row or none). A merged group checks only
the total. If any total falls short, or any statement raises, the whole batch rolls back and
every write runs again alone, in its own transaction, so the caller at fault gets its own error
(:class:`RowsMissing` or the SQLite error) and nobody else's write is affected. Statements with
``expect=None`` (the caller wants the real row count) keep their write out of the merge; it runs
after the merged groups, statement by statement, within the same transaction.

A caller cancelled while waiting does not withdraw its write: it still commits, which is what a
queue wants when a worker is torn down just after its provider returned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Statement:
    """One SQL statement, run once per parameter row."""

    sql: str
    rows: Sequence[Sequence[Any]]
    #: Rows it changes in total when every row it targets exists (an upper bound); ``None`` to
    #: get the real count back instead.
    expect: int | None = None


@dataclass(frozen=True, slots=True)
class Write:
    """Statements that commit together or not at all."""

    statements: tuple[Statement, ...]

    @property
    def mergeable(self) -> bool:
        return all(statement.expect is not None for statement in self.statements)


class StorageClosed(RuntimeError):
    """The store was used before ``open()`` or after ``close()``."""


class RowsMissing(Exception):
    """Statement ``index`` of a write changed fewer rows than it expected: a row it targets is absent.

    The write was rolled back.
    """

    def __init__(self, index: int, changed: int) -> None:
        super().__init__(f"statement {index} changed {changed} rows, fewer than expected")
        self.index = index
        self.changed = changed


class _ShortBatch(Exception):
    """A merged group changed fewer rows than its writes expect; find out whose by running them alone."""


class _LockUnavailable(Exception):
    """BEGIN failed (the database is locked by another process): no write in the batch ran."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


_Pending = tuple[Write, "asyncio.Future[list[int]]"]


@dataclass(slots=True)
class _Group:
    rows: list[Sequence[Any]] = field(default_factory=list)
    expected: int = 0


class GroupCommitWriter:
    """Serialises writes on one connection, committing concurrent ones together."""

    def __init__(self, conn: aiosqlite.Connection, *, max_batch: int = 1000) -> None:
        self._conn = conn
        self._max_batch = max_batch
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="sqlite-group-commit")

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def submit(self, write: Write) -> list[int]:
        """Commit ``write``; return the rows each statement changed.

        Raises :class:`RowsMissing` if a statement changed fewer rows than it expected.
        """
        if self._closing or self._task is None:
            raise StorageClosed("storage is closed")
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        self._wake.set()
        return await future

    async def close(self) -> None:
        """Commit everything already submitted, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = self._pending[: self._max_batch]
                del self._pending[: self._max_batch]
                await self._commit(batch)
            if self._closing:
                return

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            results = await self._transaction([write for write, _ in batch])
        except _LockUnavailable as exc:
            # Another process holds the database past busy_timeout; retrying one by one would
            # make every caller wait that long again.
            for _, future in batch:
                _settle(future, error=exc.error)
            return
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0][1], error=exc)
                return
            _log.debug("a group commit of %d writes failed (%r); running them one by one", len(batch), exc)
            for write, future in batch:
                try:
                    (result,) = await self._transaction([write])
                except _LockUnavailable as single_exc:
                    _settle(future, error=single_exc.error)
                except Exception as single_exc:
                    _settle(future, error=single_exc)
                else:
                    _settle(future, result=result)
            return
        for (_, future), result in zip(batch, results, strict=True):
            _settle(future, result=result)

    async def _transaction(self, writes: list[Write]) -> list[list[int]]:
        conn = self._conn
        try:
            await conn.execute("BEGIN IMMEDIATE")
        except aiosqlite.OperationalError as exc:
            raise _LockUnavailable(exc) from exc
        try:
            if len(writes) == 1:
                results = [await self._run_alone(writes[0])]
            else:
                results = await self._run_merged(writes)
            await conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise
        return results

    async def _run_merged(self, writes: list[Write]) -> list[list[int]]:
        # Keyed by (position in its write, sql); dicts keep first-seen order, and sorted() is stable.
        groups: dict[tuple[int, str], _Group] = {}
        for write in writes:
            if not write.mergeable:
                continue
            for position, statement in enumerate(write.statements):
                group = groups.setdefault((position, statement.sql), _Group())
                group.rows.extend(statement.rows)
                group.expected += statement.expect or 0
        for (_, sql), group in sorted(groups.items(), key=lambda item: item[0][0]):
            cursor = await self._conn.executemany(sql, group.rows)
            if cursor.rowcount < group.expected:
                raise _ShortBatch()
        results = []
        for write in writes:
            if write.mergeable:
                results.append([statement.expect or 0 for statement in write.statements])
            else:
                results.append(await self._run_alone(write))
        return results

    async def _run_alone(self, write: Write) -> list[int]:
        counts = []
        for index, statement in enumerate(write.statements):
            cursor = await self._conn.executemany(statement.sql, statement.rows)
            if statement.expect is not None and cursor.rowcount < statement.expect:
                raise RowsMissing(index, cursor.rowcount)
            counts.append(cursor.rowcount)
        return counts


def _settle(
    future: asyncio.Future[list[int]], *, result: list[int] | None = None, error: BaseException | None = None
) -> None:
    # The caller may have been cancelled; its write still happened (see the module docstring).
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result or [])
