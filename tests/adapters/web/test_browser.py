"""The playground in a real browser: ``imaginebot run`` with the sketch provider, driven by headless Chromium.

Chromium comes from the system (Debian's ``chromium`` package, which ``.ci/run`` installs) and is
driven by Playwright with its executable path set; nothing is downloaded at test time. Without
Chromium this test fails (it never skips): the playground would go untested.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
PROMPT = "a lighthouse at dusk"
CHANNEL = "studio"
TIMEOUT_MS = 30_000

pytestmark = pytest.mark.slow


def chromium_path() -> str:
    path = os.environ.get("IMAGINEBOT_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail(
            "the browser test needs Chromium: install Debian's package (apt-get install -y chromium) "
            "or set IMAGINEBOT_CHROMIUM to its path; .ci/run installs it",
            pytrace=False,
        )
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``imaginebot run`` in a temp directory; yields its base URL."""
    port = _free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[storage]\ndir = "{tmp_path / "data"}"\n\n[web]\nport = {port}\n\n'
        '[providers.sketch]\ntype = "sketch"\ndelay = 1.0\npreview_frames = 4\nsize = 384\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    log = (tmp_path / "bot.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config)],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, proc, tmp_path / "bot.log")
        yield base
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        log.close()
        assert code == 0, (tmp_path / "bot.log").read_text()


def _wait_healthy(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"imaginebot run exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"imaginebot run did not become healthy:\n{log.read_text()}")


def test_prompt_card_variation_and_gallery_search_in_chromium(served: str, tmp_path: Path) -> None:
    executable = chromium_path()
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("the browser test needs Playwright: pip install -e '.[test]'", pytrace=False)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))

        page.goto(served + "/")
        page.fill("#name", "Ada")
        page.click("#name-form button")
        expect(page.locator("#name-hint")).to_have_text("You are Ada.")
        page.fill("#new-channel", CHANNEL)
        page.click("#channel-form button")
        expect(page.locator("#channel-title")).to_have_text(f"# {CHANNEL}")

        page.fill("#prompt", f"{PROMPT} --n 4")
        page.press("#prompt", "Enter")
        card = page.locator(".card.status-succeeded").first
        expect(card.locator(".pct")).to_have_text("100 %")
        expect(card.locator(".grid img")).to_have_count(4)
        expect(card.locator(".prompt")).to_have_text(PROMPT)
        for img in card.locator(".grid img").all():
            expect(img).to_have_js_property("complete", True)
            assert img.evaluate("img => img.naturalWidth") > 0

        card.locator("button[data-action=vary][data-index='1']").click()
        variation = page.locator(".card.status-succeeded", has=page.locator(".badge", has_text="Variation of image 2"))
        expect(variation.locator(".pct")).to_have_text("100 %")
        expect(variation.locator(".grid img")).to_have_count(4)
        page.locator(".card").first.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        page.screenshot(path=str(tmp_path / "playground.png"))
        if os.environ.get("IMAGINEBOT_SCREENSHOT"):
            shutil.copyfile(tmp_path / "playground.png", os.environ["IMAGINEBOT_SCREENSHOT"])

        page.goto(f"{served}/c/{CHANNEL}")
        expect(page.locator(".thumb")).to_have_count(8)
        page.fill("#q", "nothing like it")
        expect(page.locator("#empty")).to_be_visible()
        expect(page.locator(".thumb")).to_have_count(0)
        page.fill("#q", "lighthouse dusk")
        expect(page.locator(".thumb")).to_have_count(8)
        page.locator(".thumb").first.click()
        expect(page.locator("#detail-prompt")).to_have_text(PROMPT)
        expect(page.locator("#detail-params")).to_contain_text("sketch")
        browser.close()
    assert errors == [], f"the pages logged errors (a CSP violation shows up here): {errors}"
