"""Malformed and hostile attachments, sent the way users send them: ``/imagine`` with an image option.

Each gets a private reply that says what is wrong, the bot keeps serving (the next ordinary job
goes through), and storage stays consistent: no job and no stored file comes from a refused
upload, and SQLite's integrity check passes.
"""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from adapters.discord import render
from bot.jobs import JobStatus
from tests.adapters.discord.conftest import World
from tests.bot.test_images import HOSTILE, encode, png_declaring, solid


def _real_bomb() -> bytes:
    """A real decompression bomb: a few KB of PNG that decode to 49 million pixels."""
    return encode(Image.new("1", (7_000, 7_000)), optimize=True)


def _oversize() -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\0" * (21 * 1024 * 1024)


CASES: list[tuple[str, str, Callable[[], bytes], str]] = [
    *((f"{name}.png", name, make, says) for name, make, says in HOSTILE),
    ("bomb.png", "real decompression bomb", _real_bomb, "megapixels"),
    ("strip.png", "100000 x 1", lambda: encode(Image.new("L", (100_000, 1))), "very thin strip"),
    ("huge.png", "oversize file", _oversize, "the limit is 20.0 MB"),
    ("report.png", "a PDF named .png", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\n", "not a PNG"),
    ("cat.jpg", "SVG named .jpg with a script",
     lambda: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>', "SVG"),
    ("page.gif", "HTML named .gif", lambda: b"\n\n<html><head><script>fetch('/x')</script></head></html>",
     "web page"),
    ("poly.gif", "GIF header then a script", lambda: b"GIF89a=1;alert(document.cookie)//" + b"\0" * 32, "damaged"),
    ("header.png", "enormous header, no pixels", lambda: png_declaring(2**31 - 1, 2**31 - 1), "enormous"),
]


async def _reply_to(world: World, filename: str, data: bytes, before: int) -> str:
    await world.fake.slash("imagine", {"prompt": "like this one", "count": 1}, user=world.alice,
                           channel=world.channel, attachment=(filename, data))
    await world.fake.wait_until(lambda: len(world.ephemeral_replies()) > before, timeout=20)
    return world.ephemeral_replies()[-1].content


def _stored_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "images").rglob("*") if p.is_file()]


async def test_every_hostile_attachment_gets_a_clear_reply_and_changes_nothing(world: World, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for filename, name, make, says in CASES:
        before = len(world.ephemeral_replies())
        reply = await _reply_to(world, filename, make(), before)
        assert render.notice(says) in reply or says in reply, f"{name}: {reply}"
        assert "went wrong" not in reply, name
    assert await world.app.storage.user_jobs("discord", world.alice, list(JobStatus)) == []
    assert _stored_files(data_dir) == [], "a refused upload left a file behind"
    with sqlite3.connect(data_dir / "imaginebot.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]

    # The bot is still up and still takes images: a real picture goes through.
    assert not world.bot.client.is_closed() and world.app.engine.accepting
    inter = await world.fake.slash("imagine", {"prompt": "like this one", "count": 1}, user=world.alice,
                                   channel=world.channel, attachment=("ok.jpg", solid(96, 64, fmt="JPEG")))
    await world.fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    assert job.status is JobStatus.SUCCEEDED and job.request.init_image is not None
    assert world.fake.spec.violations == []


async def test_a_real_image_with_a_misleading_name_and_type_is_judged_by_its_bytes(world: World) -> None:
    # A PNG uploaded as "photo.gif" (so the CDN says image/gif): the bytes decide, not the label.
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (10, 200, 30)).save(out, "PNG")
    inter = await world.fake.slash("imagine", {"prompt": "greener", "count": 1}, user=world.alice,
                                   channel=world.channel, attachment=("photo.gif", out.getvalue()))
    await world.fake.wait_until(lambda: inter.original_id is not None)
    job = await world.finished((await world.job_of(inter.original_id or "")).id)
    assert job.status is JobStatus.SUCCEEDED
