"""Images from the content-addressed store: ``/img/<sha256>`` and ``/thumb/<sha256>``.

A sha256 names its bytes forever, so answers carry the sha as ETag and may be cached for a
year without revalidation. Only a 64-character lowercase hex name is looked up: nothing else
from the URL reaches the store.
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web

from adapters.web import texts
from adapters.web.state import state_of
from adapters.web.views import sniff_image
from bot import images as imaging
from bot.errors import BadImage, NotFound

SHA_RE = re.compile(r"[0-9a-f]{64}")
IMMUTABLE = "public, max-age=31536000, immutable"
THUMB_SIDE = 384


def setup(app: web.Application) -> None:
    app.router.add_get("/img/{sha}", original)
    app.router.add_get("/thumb/{sha}", thumbnail)


async def original(request: web.Request) -> web.StreamResponse:
    sha = _sha(request)
    etag = f'"{sha}"'
    if _fresh(request, etag):
        return _not_modified(etag)
    data = await _blob(request, sha)
    mime = sniff_image(data)
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    if mime is None:
        # Not an image we know: never let a browser render it as a page.
        headers["Content-Disposition"] = f'attachment; filename="{sha[:16]}.bin"'
        mime = "application/octet-stream"
    return web.Response(body=data, content_type=mime, headers=headers)


async def thumbnail(request: web.Request) -> web.StreamResponse:
    sha = _sha(request)
    etag = f'"{sha}-t{THUMB_SIDE}"'
    if _fresh(request, etag):
        return _not_modified(etag)
    data = await _blob(request, sha)
    try:
        small = await asyncio.to_thread(imaging.thumbnail, data, THUMB_SIDE)
    except BadImage:
        raise NotFound(texts.NOT_FOUND) from None
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE}
    return web.Response(body=small, content_type="image/webp", headers=headers)


def _sha(request: web.Request) -> str:
    sha = request.match_info["sha"]
    if not SHA_RE.fullmatch(sha):
        raise NotFound(texts.NOT_FOUND)
    return sha


def _fresh(request: web.Request, etag: str) -> bool:
    wanted = request.headers.get("If-None-Match", "")
    return any(tag.strip() in (etag, "*") for tag in wanted.split(","))


def _not_modified(etag: str) -> web.Response:
    return web.Response(status=304, headers={"ETag": etag, "Cache-Control": IMMUTABLE})


async def _blob(request: web.Request, sha: str) -> bytes:
    # Raises NotFound (a 404 at the edge) when the store has no such image.
    return await state_of(request).app.blobs.get(sha)
