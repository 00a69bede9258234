"""Image URLs: only the platforms' CDNs over https; never a private, loopback or metadata address.

The allowed path runs over real TLS to a local server holding a certificate for the CDN names
(see :mod:`tests.hostile.cdn`): the guard sees a public address from :class:`FakeDNS`, and only
a tunnel outside the guard turns that connection into one to 127.0.0.1. Every refusal is a
:class:`BadImage` with its sentence, and the refused server never sees a request.
"""

from __future__ import annotations

import asyncio
import io
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession, ThreadedResolver, web
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bot.errors import BadImage
from bot.fetch import (
    NOT_A_PLATFORM_LINK,
    PLATFORM_CDNS,
    PRIVATE_ADDRESS,
    PublicAddressResolver,
    check_url,
    fetch_user_image,
    image_session,
)
from tests.hostile.cdn import PUBLIC, FakeCDN, FakeDNS, Tunnel, tls_contexts

FOX = "/attachments/1/2/fox.png"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 90, 20)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


async def _png_answer(request: web.Request) -> web.StreamResponse:
    return web.Response(body=PNG, content_type="image/png")


@pytest.fixture
async def tls(tmp_path: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    return tls_contexts(tmp_path)


@pytest.fixture
async def cdn(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> AsyncIterator[FakeCDN]:
    server = FakeCDN(tls[0], routes={FOX: _png_answer})
    await server.start()
    yield server
    await server.close()


def _session(
    cdn: FakeCDN, client_ssl: ssl.SSLContext, table: dict[str, list[str]]
) -> tuple[ClientSession, FakeDNS]:
    dns = FakeDNS(table)
    return image_session(resolver=Tunnel(PublicAddressResolver(dns), lambda: cdn.port), ssl_context=client_ssl), dns


PUBLIC_DNS = {name: [PUBLIC] for name in PLATFORM_CDNS}


async def test_an_attachment_on_a_platform_cdn_is_fetched_over_verified_tls(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    session, dns = _session(cdn, tls[1], PUBLIC_DNS)
    async with session:
        data = await fetch_user_image(f"https://cdn.discordapp.com{FOX}?ex=1&is=2", session=session)
    assert data == PNG
    assert [s.host for s in cdn.seen] == ["cdn.discordapp.com"] and dns.asked == ["cdn.discordapp.com"]


async def test_a_certificate_for_another_name_is_refused(
    cdn: FakeCDN, tmp_path: Path
) -> None:
    _, other_client = tls_contexts(tmp_path, names=("someone-else.example",))
    session, _ = _session(cdn, other_client, PUBLIC_DNS)
    async with session:
        with pytest.raises(BadImage, match="couldn't download"):
            await fetch_user_image(f"https://cdn.discordapp.com{FOX}", session=session)


@pytest.mark.parametrize("addresses", [
    ["127.0.0.1"], ["::1"], ["10.1.2.3"], ["172.16.5.4"], ["192.168.0.10"], ["169.254.169.254"],
    ["100.64.0.1"], ["0.0.0.0"], ["224.0.0.251"], ["fd12:3456::1"], ["fe80::1"], ["::ffff:127.0.0.1"],
    ["64:ff9b::a00:1"], ["2002:c0a8:0001::1"], [PUBLIC, "10.0.0.1"],
], ids=lambda a: "+".join(a))
async def test_a_cdn_name_that_resolves_to_a_private_address_is_refused_before_connecting(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext], addresses: list[str]
) -> None:
    session, _ = _session(cdn, tls[1], {"cdn.discordapp.com": addresses})
    async with session:
        with pytest.raises(BadImage) as caught:
            await fetch_user_image(f"https://cdn.discordapp.com{FOX}", session=session)
    assert caught.value.message == PRIVATE_ADDRESS
    assert cdn.seen == [], "nothing was sent to the refused address"


async def test_the_real_resolver_refuses_localhost_where_a_server_is_listening(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    # The production guard around the system resolver: localhost is loopback, whoever listens there.
    real = PublicAddressResolver(ThreadedResolver())
    session = image_session(resolver=Tunnel(real, lambda: cdn.port), ssl_context=tls[1])
    async with session:
        with pytest.raises(BadImage) as caught:
            await fetch_user_image(f"https://localhost{FOX}", session=session, allowed_hosts=["localhost"])
    assert caught.value.message == PRIVATE_ADDRESS and cdn.seen == []


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/x.png", "https://[::1]/x.png", "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.8/x.png", "https://2130706433/x.png", "https://0x7f000001/x.png",
])
async def test_literal_private_addresses_are_refused(url: str) -> None:
    async with image_session() as session:
        with pytest.raises(BadImage) as caught:
            await fetch_user_image(url, session=session, allowed_hosts=[*PLATFORM_CDNS, "127.0.0.1", "::1",
                                                                         "2130706433", "0x7f000001"])
    assert caught.value.message in (PRIVATE_ADDRESS, NOT_A_PLATFORM_LINK)


@pytest.mark.parametrize("url", [
    f"http://cdn.discordapp.com{FOX}",                       # not https
    f"https://cdn.discordapp.com:8443{FOX}",                 # not the default port
    f"https://user:pw@cdn.discordapp.com{FOX}",              # credentials in the URL
    f"https://cdn.discordapp.com@evil.example{FOX}",         # the real host is evil.example
    f"https://cdn.discordapp.com.evil.example{FOX}",         # a lookalike suffix
    f"https://evil.example/cdn.discordapp.com{FOX}",
    f"https://cdn.d\u0456scordapp.com{FOX}",                 # Cyrillic i
    "file:///etc/passwd", "ftp://cdn.discordapp.com/x.png", "javascript:alert(1)", "data:image/png;base64,AAAA",
    "gopher://cdn.discordapp.com/", "//cdn.discordapp.com/x.png", "", "not a url at all",
])
async def test_urls_off_the_platform_cdns_are_refused_before_any_lookup(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext], url: str
) -> None:
    session, dns = _session(cdn, tls[1], {**PUBLIC_DNS, "evil.example": [PUBLIC]})
    async with session:
        with pytest.raises(BadImage) as caught:
            await fetch_user_image(url, session=session)
    assert caught.value.message == NOT_A_PLATFORM_LINK
    assert dns.asked == [] and cdn.seen == []


async def _redirect_to(location: str) -> web.StreamResponse:
    raise web.HTTPFound(location)


@pytest.mark.parametrize("location, says", [
    ("http://169.254.169.254/latest/meta-data/", NOT_A_PLATFORM_LINK),
    ("https://evil.example/x.png", NOT_A_PLATFORM_LINK),
    ("https://127.0.0.1/x.png", PRIVATE_ADDRESS),
])
async def test_a_redirect_off_the_cdns_is_refused(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext], location: str, says: str
) -> None:
    async def hop(request: web.Request) -> web.StreamResponse:
        return await _redirect_to(location)

    cdn.routes["/hop.png"] = hop
    session, _ = _session(cdn, tls[1], {**PUBLIC_DNS, "evil.example": [PUBLIC]})
    async with session:
        with pytest.raises(BadImage) as caught:
            await fetch_user_image("https://cdn.discordapp.com/hop.png", session=session)
    assert caught.value.message == says
    assert [s.path for s in cdn.seen] == ["/hop.png"], "the redirect target was never requested"


async def test_a_redirect_between_cdns_is_followed_without_the_callers_credentials(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    async def hop(request: web.Request) -> web.StreamResponse:
        return await _redirect_to(f"https://media.discordapp.net{FOX}")

    cdn.routes["/hop.png"] = hop
    session, _ = _session(cdn, tls[1], PUBLIC_DNS)
    async with session:
        data = await fetch_user_image("https://files.slack.com/hop.png", session=session,
                                      headers={"Authorization": "Bearer xoxb-secret"})
    assert data == PNG
    assert [(s.host, s.authorization) for s in cdn.seen] == [
        ("files.slack.com", "Bearer xoxb-secret"), ("media.discordapp.net", None),
    ]


async def test_redirect_loops_end(cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def loop(request: web.Request) -> web.StreamResponse:
        return await _redirect_to("https://cdn.discordapp.com/loop.png")

    cdn.routes["/loop.png"] = loop
    session, _ = _session(cdn, tls[1], PUBLIC_DNS)
    async with session:
        with pytest.raises(BadImage, match="redirects too many times"):
            await fetch_user_image("https://cdn.discordapp.com/loop.png", session=session)
    assert len(cdn.seen) == 4


async def test_what_is_not_an_image_is_refused_by_its_answer(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    async def html(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html><script>alert(1)</script></html>", content_type="text/html")

    async def svg(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<svg xmlns='http://www.w3.org/2000/svg'/>", content_type="image/svg+xml")

    async def gzipped(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x1f\x8b" + b"\0" * 20, content_type="image/png",
                            headers={"Content-Encoding": "gzip"})

    async def missing(request: web.Request) -> web.StreamResponse:
        return web.Response(status=403, text="expired link")

    cdn.routes.update({"/page.png": html, "/draw.png": svg, "/zip.png": gzipped, "/gone.png": missing})
    session, _ = _session(cdn, tls[1], PUBLIC_DNS)
    async with session:
        for path, says in [("/page.png", "it is text/html"), ("/draw.png", r"it is image/svg\+xml"),
                           ("/zip.png", "compressed"), ("/gone.png", "answered 403")]:
            with pytest.raises(BadImage, match=says):
                await fetch_user_image(f"https://cdn.discordapp.com{path}", session=session)


async def test_oversize_and_endless_bodies_stop_at_the_cap(
    cdn: FakeCDN, tls: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    async def declared(request: web.Request) -> web.StreamResponse:
        return web.Response(body=b"\x89PNG" + b"\0" * (3 * 1024 * 1024), content_type="image/png")

    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for _ in range(4096):  # 256 MiB at most, should the client never hang up
                await response.write(b"\0" * 65536)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return response

    cdn.routes.update({"/big.png": declared, "/endless.png": endless})
    session, _ = _session(cdn, tls[1], PUBLIC_DNS)
    async with session:
        for path in ("/big.png", "/endless.png"):
            began = time.monotonic()
            with pytest.raises(BadImage, match="larger than 1 MB"):
                await fetch_user_image(f"https://cdn.discordapp.com{path}", session=session,
                                       max_bytes=1024 * 1024)
            assert time.monotonic() - began < 5


_HOSTS = st.sampled_from([*PLATFORM_CDNS, "evil.example", "127.0.0.1", "[::1]", "cdn.discordapp.com.evil.example",
                          "localhost", "169.254.169.254", "CDN.DISCORDAPP.COM"])


@settings(max_examples=200, deadline=None)
@given(
    scheme=st.sampled_from(["https", "http", "ftp", "file", "HTTPS"]),
    userinfo=st.sampled_from(["", "user@", "a:b@", "cdn.discordapp.com@"]),
    host=_HOSTS,
    port=st.sampled_from(["", ":443", ":80", ":8443"]),
    path=st.text(max_size=30),
)
def test_a_url_is_accepted_only_as_https_to_a_listed_host(
    scheme: str, userinfo: str, host: str, port: str, path: str
) -> None:
    url = f"{scheme}://{userinfo}{host}{port}/{path}"
    try:
        parsed = check_url(url, PLATFORM_CDNS)
    except BadImage as exc:
        assert exc.message in (NOT_A_PLATFORM_LINK, PRIVATE_ADDRESS)
        return
    assert parsed.scheme == "https" and parsed.host is not None and parsed.host.lower() in PLATFORM_CDNS
    assert parsed.port == 443 and parsed.user is None
