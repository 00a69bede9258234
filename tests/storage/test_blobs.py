"""FileBlobStore: images stored once, by content hash, and never half-written."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest

from bot.errors import InvalidRequest, NotFound
from storage.blobs import FileBlobStore

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


async def test_put_returns_the_sha256_and_get_returns_the_bytes(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path / "images")
    sha = await blobs.put(PNG)
    assert sha == hashlib.sha256(PNG).hexdigest()
    assert await blobs.get(sha) == PNG
    assert await blobs.exists(sha) is True
    assert (tmp_path / "images" / sha[:2] / sha).read_bytes() == PNG


async def test_the_same_bytes_are_stored_once(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    shas = await asyncio.gather(*(blobs.put(PNG) for _ in range(8)))
    assert len(set(shas)) == 1
    assert await blobs.put(b"other") != shas[0]
    stored = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert stored == sorted([shas[0], hashlib.sha256(b"other").hexdigest()])  # no temporary files left


async def test_a_missing_blob_is_not_found(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    missing = "0" * 64
    assert await blobs.exists(missing) is False
    with pytest.raises(NotFound):
        await blobs.get(missing)


@pytest.mark.parametrize(
    "bad",
    [
        "", "abc", "A" * 64, "g" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, "00/00/" + "0" * 58,
        "0" * 64 + "\n",
    ],
)
async def test_anything_but_a_sha256_hex_digest_is_rejected(tmp_path: Path, bad: str) -> None:
    blobs = FileBlobStore(tmp_path / "images")
    (tmp_path / "secret").write_bytes(b"do not serve")
    with pytest.raises(InvalidRequest):
        await blobs.get(bad)
    with pytest.raises(InvalidRequest):
        await blobs.exists(bad)


async def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    blobs = FileBlobStore(tmp_path)
    sha = hashlib.sha256(PNG).hexdigest()
    # A directory where the blob belongs makes the final rename fail after the data was written.
    (tmp_path / sha[:2] / sha).mkdir(parents=True)
    with pytest.raises(OSError):
        await blobs.put(PNG)
    assert [p.name for p in (tmp_path / sha[:2]).iterdir()] == [sha]
    assert await blobs.exists(sha) is False
