"""Signed gallery links: a chat channel's gallery opens only with a valid, unexpired link for it."""

from __future__ import annotations

import stat
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bot.config import config_from_dict
from bot.errors import ConfigError
from bot.jobs import Origin
from bot.links import GalleryLinks, load_or_create_secret
from tests.adapters.web.conftest import Web

NOW = 1_700_000_000.0
DISCORD = Origin(platform="discord", server_id="g1", channel_id="111", user_id="u1", user_name="Una")


def _links() -> GalleryLinks:
    return GalleryLinks(secret=b"k" * 32, base_url="https://art.example.org", ttl_seconds=3600)


def _parts(path: str) -> tuple[str, str, str]:
    split = urlsplit(path)
    query = parse_qs(split.query)
    return split.path, query["exp"][0], query["sig"][0]


def test_a_link_opens_its_channel_until_it_expires() -> None:
    links = _links()
    path, exp, sig = _parts(links.path("discord", "111", now=NOW))
    assert path == "/c/discord/111" and int(exp) == NOW + 3600
    assert links.verify("discord", "111", exp, sig, now=NOW + 3599)
    assert not links.verify("discord", "111", exp, sig, now=NOW + 3600), "expired"
    assert not links.verify("discord", "222", exp, sig, now=NOW), "another channel"
    assert not links.verify("slack", "111", exp, sig, now=NOW), "another platform"
    assert not links.verify("discord", "111", str(int(exp) + 1), sig, now=NOW), "a longer life"
    assert not links.verify("discord", "111", exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"), now=NOW)
    assert not links.verify("discord", "111", exp, "é" * 43, now=NOW)
    assert not links.verify("discord", "111", None, sig, now=NOW)
    assert not links.verify("discord", "111", "-5", sig, now=NOW)
    other = GalleryLinks(secret=b"x" * 32, base_url="", ttl_seconds=3600)
    assert not other.verify("discord", "111", exp, sig, now=NOW), "another secret"
    assert links.url("discord", "111", now=NOW).startswith("https://art.example.org/c/discord/111?exp=")
    assert links.path("web", "general", now=NOW) == "/c/general"


def test_chat_adapters_can_mint_links_from_the_config_alone(tmp_path: Path) -> None:
    config = config_from_dict({"storage": {"dir": str(tmp_path)}, "web": {"port": 9000}}, environ={})
    first = GalleryLinks.from_config(config)
    secret_file = tmp_path / "link-secret"
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert first.base_url == "http://127.0.0.1:9000" and first.ttl_seconds == 168 * 3600
    again = GalleryLinks.from_config(config)
    assert again.secret == first.secret, "the secret is generated once and kept"
    configured = config_from_dict({
        "storage": {"dir": str(tmp_path)},
        "web": {"link_secret": "${SECRET}", "public_url": "https://art.example.org/", "link_ttl_hours": 1},
    }, environ={"SECRET": "s3cret-value-from-the-environment"})
    chosen = GalleryLinks.from_config(configured)
    assert chosen.secret == b"s3cret-value-from-the-environment" and chosen.base_url == "https://art.example.org"


def test_a_damaged_secret_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "link-secret").write_text("not hex")
    with pytest.raises(ConfigError, match="link-secret"):
        load_or_create_secret(tmp_path / "link-secret")


async def _discord_gallery(web: Web) -> str:
    [job] = await web.app.service.submit("a secret council --n 1", DISCORD)
    await web.finished(job.id, delivered=False)
    return job.id


async def test_a_valid_link_opens_the_page_and_its_images(web: Web) -> None:
    job_id = await _discord_gallery(web)
    path = web.links.path("discord", "111", now=web.app.clock.now())
    page = await web.get(path)
    assert page.status == 200 and page.content_type == "text/html"
    query = urlsplit(path).query
    body = await (await web.get(f"/api/gallery/discord/111?{query}")).json()
    assert [i["job"]["id"] for i in body["items"]] == [job_id]


async def test_expired_tampered_and_wrong_channel_links_get_403(web: Web) -> None:
    await _discord_gallery(web)
    now = web.app.clock.now()
    _, exp, sig = _parts(web.links.path("discord", "111", now=now))
    expired_exp = str(int(now) - 10)
    expired_sig = web.links.sign("discord", "111", int(expired_exp))
    attempts = [
        f"discord/111?exp={expired_exp}&sig={expired_sig}",  # expired (correctly signed)
        f"discord/111?exp={int(exp) + 100}&sig={sig}",  # tampered expiry
        f"discord/111?exp={exp}&sig={sig[::-1]}",  # tampered signature
        f"discord/222?exp={exp}&sig={sig}",  # another channel
        f"slack/111?exp={exp}&sig={sig}",  # another platform
        "discord/111",  # no signature at all
    ]
    for attempt in attempts:
        page = await web.get(f"/c/{attempt}")
        assert page.status == 403, attempt
        assert "gallery link" in await page.text()
        api = await web.get(f"/api/gallery/{attempt}")
        assert api.status == 403, attempt
        assert "expired" in (await api.json())["error"]


async def test_chat_channels_are_never_listed(web: Web) -> None:
    await _discord_gallery(web)
    await web.finished(await web.submit("a public fox --n 1"))
    channels = await (await web.get("/api/channels")).json()
    assert channels["channels"] == ["general"]
    cards = await web.get("/api/channels/111/cards")
    assert (await cards.json())["cards"] == [], "a web channel of the same name is another channel"
    assert (await web.get("/api/gallery/web/111")).status == 200
    assert (await (await web.get("/api/gallery/web/111")).json())["items"] == []


@pytest.mark.parametrize("path", ["/c/DISCORD/111", "/c/discord/..%2F..", "/c/discord/a.b", "/c/a/b/c"])
async def test_odd_gallery_paths_are_not_found(web: Web, path: str) -> None:
    assert (await web.get(path)).status == 404
