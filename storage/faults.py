"""Which storage failures mean the disk itself is in trouble: full, read-only or failing.

Such an error says nothing about the request that met it, so the core treats it apart from bugs:
new work is refused with :class:`bot.errors.StorageUnavailable` (a message users can be shown),
and jobs already accepted wait and try again once the disk recovers. File errors are recognised
by ``errno`` (what ``open`` and ``os.write`` raise), SQLite's by their extended result code
(``sqlite3.Error.sqlite_errorname``): SQLITE_FULL, SQLITE_READONLY_*, SQLITE_IOERR_*,
SQLITE_CANTOPEN.

:class:`GuardedBlobStore` applies this at the blob store's boundary; the SQLite store's errors
are translated where the core calls it (``bot/engine.py``).
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from bot import messages
from bot.errors import StorageUnavailable
from storage.base import BlobStore

_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file reached the size limit",
    errno.EROFS: "the disk is read-only",
    errno.EIO: "the disk reported an I/O error",
}
_SQLITE = (
    ("SQLITE_FULL", "the disk is full (SQLite: database or disk is full)"),
    ("SQLITE_READONLY", "the database is read-only"),
    ("SQLITE_IOERR", "the disk reported an I/O error (SQLite)"),
    ("SQLITE_CANTOPEN", "the database file cannot be opened"),
)


def disk_fault(exc: BaseException) -> str | None:
    """What is wrong with the disk when ``exc`` comes from it ("the disk is full" ...), else None."""
    if isinstance(exc, StorageUnavailable):
        return exc.reason
    if isinstance(exc, OSError) and exc.errno in _ERRNOS:
        return _ERRNOS[exc.errno]
    if isinstance(exc, sqlite3.Error):
        name = getattr(exc, "sqlite_errorname", "") or ""
        for prefix, reason in _SQLITE:
            if name.startswith(prefix):
                return reason
    return None


def storage_unavailable(exc: BaseException) -> StorageUnavailable | None:
    """``exc`` as a :class:`StorageUnavailable` when it is a disk fault, else None."""
    if isinstance(exc, StorageUnavailable):
        return exc
    reason = disk_fault(exc)
    return None if reason is None else StorageUnavailable(messages.STORAGE_UNAVAILABLE, reason=reason)


@contextmanager
def translated() -> Iterator[None]:
    """Raise disk faults from the block as :class:`StorageUnavailable` (chained); others unchanged."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        trouble = storage_unavailable(exc)
        if trouble is None:
            raise
        raise trouble from exc


class GuardedBlobStore:
    """A :class:`BlobStore` whose disk faults raise :class:`StorageUnavailable`; others pass through."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner

    async def put(self, data: bytes) -> str:
        with translated():
            return await self.inner.put(data)

    async def get(self, sha256: str) -> bytes:
        with translated():
            return await self.inner.get(sha256)

    async def exists(self, sha256: str) -> bool:
        with translated():
            return await self.inner.exists(sha256)
