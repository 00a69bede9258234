"""Hostile prompts on Discord and in the web playground: mentions, markdown, control characters,
10,000 characters. Each is either drawn harmlessly (nobody pinged, nothing formatted, control
characters gone) or refused with a sentence that says why; the bot stays up and storage consistent.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

from bot.jobs import JobStatus
from tests.adapters.discord.conftest import World
from tests.adapters.web.conftest import Web

CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")

#: (prompt, what the user is told when it is refused, or None when it is drawn)
PROMPTS: list[tuple[str, str | None]] = [
    ("@everyone @here <@123456789012345678> <@&987654321098765432> <#111> a fox", None),
    ("**bold** __under__ ~~strike~~ `code` ```block``` [click](https://evil.example) > quote ||spoiler|| # head",
     None),
    ("a\x00 bell\x07 escape\x1b[31m red\x1b[0m del\x7f c1\x85\x9b fox\r\n\ttabbed", None),
    ("\u202egnp.exe a mirrored fox \u200b\u200d\ufeff", None),
    ("x" * 10_000, "10,000 characters long; the limit is 4,000"),
    ("\x00\x01\x02 \x1b \x7f", "Your prompt is empty"),
    ("{a,b}" * 25, "the limit is"),
    ("--ar 99999999999999999999:1 fox", "--ar takes"),
    ("fox --seed " + "9" * 5000, "--seed takes"),
]


def _bot_texts(world: World) -> list[str]:
    """Every text the bot posted or edited on Discord: contents, embed titles, descriptions, fields."""
    texts = []
    for call in world.fake.calls:
        body = call.body.json
        if not isinstance(body, dict):
            continue
        texts.append(body.get("content") or "")
        for embed in body.get("embeds") or []:
            texts += [embed.get("title") or "", embed.get("description") or ""]
            texts += [f.get("value") or "" for f in embed.get("fields") or []]
    return texts


#: Markdown that would format (or link) if a backslash did not precede it.
UNESCAPED = re.compile(r"(?<!\\)(\*\*bold|__under|~~strike|\[click\]|\|\|spoiler)")


async def test_hostile_prompts_on_discord(world: World, tmp_path: Path) -> None:
    fake = world.fake
    drawn: list[str] = []
    for prompt, refusal in PROMPTS:
        before = len(world.ephemeral_replies())
        inter = await fake.slash("imagine", {"prompt": prompt, "count": 1}, user=world.alice, channel=world.channel)
        if refusal is not None:
            await fake.wait_until(lambda n=before: len(world.ephemeral_replies()) > n)  # type: ignore[misc]
            reply = world.ephemeral_replies()[-1].content
            assert refusal.replace("--", "\\-\\-") in reply or refusal in reply, (prompt[:40], reply)
            continue
        await fake.wait_until(lambda i=inter: i.original_id is not None)  # type: ignore[misc]
        job = await world.finished((await world.job_of(inter.original_id or "")).id, timeout=20)
        assert job.status is JobStatus.SUCCEEDED
        assert not CONTROLS.search(job.request.prompt), "control characters never reach a provider"
        drawn.append(job.id)
    assert len(drawn) == 4
    sent = [c for c in fake.calls if isinstance(c.body.json, dict) and ("content" in c.body.json
                                                                         or "embeds" in c.body.json)]
    assert sent and all(c.body.json.get("allowed_mentions", {}).get("parse") == [] for c in sent), "nobody pinged"
    texts = _bot_texts(world)
    assert any("bold" in text for text in texts) and any("mirrored fox" in text for text in texts)
    for text in texts:
        assert "@everyone" not in text and "@here" not in text, text[:200]
        assert not UNESCAPED.search(text), f"markdown is shown literally: {text[:200]}"
        assert not CONTROLS.search(text), "no control characters are posted"
    assert fake.spec.violations == []
    with sqlite3.connect(tmp_path / "data" / "imaginebot.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert len(await world.app.storage.user_jobs("discord", world.alice, list(JobStatus))) == len(drawn)


async def test_hostile_prompts_in_the_web_playground(web: Web) -> None:
    drawn: list[str] = []
    for prompt, refusal in PROMPTS:
        response = await web.post("/api/channels/general/say", {"text": prompt}, user="mallory")
        body: dict[str, Any] = await response.json()
        if refusal is not None:
            # The box takes 4,500 characters; past that the text is cut, and the limit still named.
            expected = refusal.replace("10,000", "4,500")
            assert response.status == 400 and expected in body["error"], (prompt[:40], body)
            continue
        assert response.status == 200, body
        job = await web.finished(body["jobs"][0]["id"], timeout=20)
        assert job.status is JobStatus.SUCCEEDED and not CONTROLS.search(job.request.prompt)
        drawn.append(job.id)
    cards = await web.get("/api/channels/general/cards", user="mallory")
    assert cards.status == 200 and len((await cards.json())["cards"]) == len(drawn)
    page = await web.get("/c/general")
    html = await page.text()
    assert page.status == 200 and "<script>alert" not in html and "@everyone" not in html
    assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
    health = await web.get("/healthz")
    assert health.status == 200
