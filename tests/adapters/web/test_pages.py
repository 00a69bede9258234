"""The playground page, static files and the headers every answer carries."""

from __future__ import annotations

import pytest

from adapters.web.edge import CSP
from tests.adapters.web.conftest import Web


async def test_the_playground_page_has_a_strict_content_security_policy(web: Web) -> None:
    response = await web.get("/")
    assert response.status == 200
    assert response.content_type == "text/html"
    csp = response.headers["Content-Security-Policy"]
    assert csp == CSP
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = await response.text()
    assert '<script src="/static/app.js"' in page
    assert "<script>" not in page and "style=" not in page and "http" not in page.replace("http-equiv", "")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("app.js", "text/javascript"),
        ("gallery.js", "text/javascript"),
        ("style.css", "text/css"),
        ("icon.svg", "image/svg+xml"),
    ],
)
async def test_static_files_have_their_content_types(web: Web, name: str, content_type: str) -> None:
    response = await web.get(f"/static/{name}")
    assert response.status == 200
    assert response.content_type == content_type
    etag = response.headers["ETag"]
    again = await web.get(f"/static/{name}", headers={"If-None-Match": etag})
    assert again.status == 304


@pytest.mark.parametrize(
    "path",
    [
        "/static/nope.js",
        "/static/index.html",
        "/static/..%2F..%2Fbot%2Fapp.py",
        "/static/%2e%2e/server.py",
        "/static/../server.py",
        "/static/.%2fapp.js",
    ],
)
async def test_only_known_static_files_are_served(web: Web, path: str) -> None:
    response = await web.get(path)
    assert response.status == 404
    assert "def " not in await response.text()


async def test_errors_carry_the_security_headers_and_no_traceback(web: Web) -> None:
    response = await web.get("/api/channels/bad%20name/cards")
    assert response.status == 400
    assert response.headers["Content-Security-Policy"] == CSP
    body = await response.json()
    assert "channel name" in body["error"] and "Traceback" not in body["error"]


async def test_scripts_never_build_html_from_strings(web: Web) -> None:
    for name in ("app.js", "gallery.js"):
        source = await (await web.get(f"/static/{name}")).text()
        assert "innerHTML" not in source and "eval(" not in source and "http://" not in source
