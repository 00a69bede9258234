"""Content-addressed image files: :class:`FileBlobStore` implements :class:`storage.base.BlobStore`.

A blob lives at ``root/ab/abcd…`` (its sha256 hex digest, sharded by the first byte). One level of
256 folders, not two of 65,536: creating a folder costs as much as creating a file on ext4, and with
two levels nearly every new image made a new folder; ext4 indexes large folders well.
Writes go to a temporary file in the target directory,
are renamed into place, so a reader or a crash never sees half an image, and two writers of the
same bytes both succeed with the same result. With ``fsync=True`` (storage ``synchronous = "full"``)
each file and its directory are also fsynced, so an image survives a power cut too; a process
crash never needs that, since the kernel keeps what was written. Every file operation runs in a thread:
a slow disk must not stall the event loop and with it every chat command.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import re
import threading
from pathlib import Path

from bot.errors import InvalidRequest, NotFound

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class FileBlobStore:
    """Blobs as files under ``root``, named by the sha256 of their bytes."""

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self._root = root
        self._fsync = fsync
        self._seq = itertools.count()
        self._made_dirs: set[Path] = set()

    async def put(self, data: bytes) -> str:
        """Store ``data`` (if it is not stored already) and return its sha256 hex digest."""
        return await asyncio.to_thread(self._put, data)

    async def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; raises :class:`NotFound` when there are none."""
        path = self._path(sha256)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError as exc:
            raise NotFound("That image is no longer stored.") from exc

    async def exists(self, sha256: str) -> bool:
        return await asyncio.to_thread(self._path(sha256).is_file)

    def _path(self, sha256: str) -> Path:
        # The name becomes a path, so it must be exactly a digest: no "..", "/", or uppercase twin.
        if not _SHA256_HEX.fullmatch(sha256):
            raise InvalidRequest("That is not an image id.")
        return self._root / sha256[:2] / sha256

    def _put(self, data: bytes) -> str:
        sha256 = hashlib.sha256(data).hexdigest()
        path = self._path(sha256)
        if path.is_file():
            return sha256
        if path.parent not in self._made_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._made_dirs.add(path.parent)  # set.add is atomic under the GIL; a race only repeats a mkdir
        # A unique temp name without mkstemp, which costs ten times the write itself here.
        tmp_path = path.parent / f".tmp-{sha256[:16]}-{os.getpid()}-{threading.get_ident()}-{next(self._seq)}"
        try:
            with open(tmp_path, "xb") as tmp:
                tmp.write(data)
                if self._fsync:
                    tmp.flush()
                    os.fsync(tmp.fileno())
            os.replace(tmp_path, path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        if self._fsync:
            _fsync_dir(path.parent)
        return sha256


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable on POSIX; Windows cannot open a directory for this.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
