"""Images from the content-addressed store: ETag, long-lived caching, types, and nothing else."""

from __future__ import annotations

import hashlib

import pytest

from bot import images as imaging
from tests.adapters.web.conftest import Web


async def _stored_image(web: Web) -> str:
    job_id = await web.submit("a lighthouse --n 1")
    await web.finished(job_id)
    [record] = await web.app.storage.job_images(job_id)
    return record.sha256


async def test_an_image_is_served_with_its_sha_as_etag_and_cached_for_good(web: Web) -> None:
    sha = await _stored_image(web)
    response = await web.get(f"/img/{sha}")
    assert response.status == 200 and response.content_type == "image/png"
    data = await response.read()
    assert hashlib.sha256(data).hexdigest() == sha
    assert response.headers["ETag"] == f'"{sha}"'
    cache = response.headers["Cache-Control"]
    assert "immutable" in cache and "max-age=31536000" in cache
    assert imaging.read_parameters(data)["prompt"] == "a lighthouse"
    again = await web.get(f"/img/{sha}", headers={"If-None-Match": f'"{sha}"'})
    assert again.status == 304 and await again.read() == b""
    head = await web.client.head(f"/img/{sha}")
    assert head.status == 200


async def test_thumbnails_are_small_webp(web: Web) -> None:
    sha = await _stored_image(web)
    response = await web.get(f"/thumb/{sha}")
    assert response.status == 200 and response.content_type == "image/webp"
    info = imaging.image_info(await response.read())
    assert info.format == "WEBP" and max(info.width, info.height) <= 384
    assert response.headers["ETag"] != f'"{sha}"'
    cached = await web.get(f"/thumb/{sha}", headers={"If-None-Match": response.headers["ETag"]})
    assert cached.status == 304


async def test_a_blob_that_is_not_an_image_is_only_ever_downloaded(web: Web) -> None:
    sha = await web.app.blobs.put(b"<html><script>alert(1)</script></html>")
    response = await web.get(f"/img/{sha}")
    assert response.status == 200
    assert response.content_type == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (await web.get(f"/thumb/{sha}")).status == 404


@pytest.mark.parametrize(
    "path",
    [
        "/img/" + "0" * 64,  # well-formed, unknown
        "/img/" + "A" * 64,  # upper case is not how we name blobs
        "/img/abc",
        "/img/" + "0" * 65,
        "/img/..%2F..%2F..%2Fetc%2Fpasswd",
        "/img/../../etc/passwd",
        "/img/%2e%2e%2fimaginebot.db",
        "/thumb/" + "f" * 64,
        "/thumb/..%2Fimaginebot.db",
    ],
)
async def test_unknown_or_malformed_names_are_not_found(web: Web, path: str) -> None:
    response = await web.get(path)
    assert response.status == 404
    body = await response.read()
    assert b"root:" not in body and b"SQLite" not in body
