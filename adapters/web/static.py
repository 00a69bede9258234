"""The pages, scripts and styles under ``static/``, read once and served from memory.

Only files that exist in ``static/`` when the server starts can be served, by exact name: no
path from a URL ever reaches the file system.
"""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).with_name("static")
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_static(directory: Path = STATIC_DIR) -> dict[str, StaticFile]:
    files = {}
    for path in sorted(directory.iterdir()):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        files[path.name] = StaticFile(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return files


STATIC = web.AppKey("imaginebot_static", dict[str, StaticFile])


def setup(app: web.Application) -> None:
    app[STATIC] = load_static()
    app.router.add_get("/", playground)
    app.router.add_get("/static/{name}", static_file)


async def playground(request: web.Request) -> web.StreamResponse:
    return page_response(request, "index.html")


async def static_file(request: web.Request) -> web.StreamResponse:
    return page_response(request, request.match_info["name"], assets_only=True)


def page_response(request: web.Request, name: str, *, assets_only: bool = False) -> web.StreamResponse:
    """A file from ``static/`` (revalidated by ETag, so a new version shows at once)."""
    file = request.app[STATIC].get(name)
    if file is None or (assets_only and file.content_type == "text/html"):
        raise web.HTTPNotFound()
    headers = {"ETag": file.etag, "Cache-Control": "no-cache"}
    if request.headers.get("If-None-Match") == file.etag:
        return web.Response(status=304, headers=headers)
    charset = "utf-8" if file.content_type.startswith("text/") else None
    return web.Response(body=file.body, content_type=file.content_type, charset=charset, headers=headers)


def message_page(title: str, text: str, *, status: int) -> web.Response:
    """A small page that says one thing (an invalid link, a missing channel)."""
    body = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)} · imaginebot</title><link rel=stylesheet href=/static/style.css></head>"
        f'<body class=message-page><main class=message><h1>{html.escape(title)}</h1>'
        f"<p>{html.escape(text)}</p><p><a href=/>Open the playground</a></p></main></body></html>"
    )
    return web.Response(text=body, content_type="text/html", status=status)
