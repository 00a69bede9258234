"""The AUTOMATIC1111/Forge provider against the fake WebUI API, through its real aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot import images as imaging
from bot.clock import FakeClock
from bot.errors import ConfigError, ProviderBadRequest, ProviderQuota, ProviderTimeout, ProviderUnavailable
from bot.request import JobKind
from providers.a1111 import A1111Provider
from tests.fakes.a1111_api import MODELS, SAMPLERS, FakeA1111
from tests.fakes.comfyui_api import FakeComfyUI
from tests.fakes.provider_http import Fault, png
from tests.providers.conftest import Progress, make_call, provider, run
from tests.providers.selfhosted_support import assert_never_logged, eventually, pumping

CHECKPOINT = MODELS[1]["title"]


@pytest.fixture
async def webui() -> AsyncIterator[FakeA1111]:
    fake = FakeA1111()
    await fake.start()
    yield fake
    await fake.close()


def a1111(fake: FakeA1111 | str | list[str], clock: FakeClock | None = None, **settings: Any) -> A1111Provider:
    url = fake if isinstance(fake, str | list) else f"http://127.0.0.1:{fake.port}"
    section = {"type": "a1111", "base_url": url, "progress_seconds": 0.5, **settings}
    built = provider("webui", section, clock)
    assert isinstance(built, A1111Provider)
    return built


async def test_txt2img_sends_every_parameter_and_reads_the_seeds_from_info(webui: FakeA1111) -> None:
    clock = FakeClock()
    p = a1111(webui, clock, model=CHECKPOINT, size=512)
    async with pumping(clock):
        made = await run(p, make_call("a castle", count=2, provider=p, negative_prompt="blurry"))
    body = next(r.json for r in webui.received if r.path == "/sdapi/v1/txt2img")
    assert body["prompt"] == "a castle" and body["negative_prompt"] == "blurry"
    assert (body["steps"], body["cfg_scale"], body["sampler_name"]) == (25, 7.0, "Euler a")
    assert (body["width"], body["height"], body["batch_size"], body["seed"]) == (512, 512, 2, 7)
    assert body["override_settings"] == {"sd_model_checkpoint": CHECKPOINT}
    assert body["force_task_id"].startswith("task(imaginebot-")
    assert [i.seed for i in made] == [7, 8]  # read back from info; the grid in front was skipped
    assert all((i.width, i.height, i.mime) == (512, 512, "image/png") for i in made)
    assert made[0].info["sampler"] == "Euler a" and made[0].model == CHECKPOINT
    assert webui.violations == []


async def test_previews_come_from_the_progress_endpoint_while_the_call_runs(webui: FakeA1111) -> None:
    webui.ticks_per_job = 4
    clock = FakeClock()
    p = a1111(webui, clock)
    progress = Progress()
    async with pumping(clock):
        await run(p, make_call(provider=p, steps=20), progress)
    previews = [u for u in progress.updates if u.preview is not None]
    assert len(previews) >= 2
    assert imaging.image_info(previews[0].preview or b"").mime == "image/webp"
    assert previews[0].text.startswith("step ") and previews[0].text.endswith("/20")
    fractions = [u.fraction or 0 for u in progress.updates]
    assert fractions == sorted(fractions) and max(fractions) < 1
    assert len({u.preview for u in previews}) == len(previews)  # the same picture is not sent twice


async def test_progress_is_polled_on_the_injected_clock_and_cancel_interrupts(webui: FakeA1111) -> None:
    webui.hold = True
    clock = FakeClock()
    p = a1111(webui, clock, progress_seconds=0.75)
    task = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
    await asyncio.wait_for(webui.started.wait(), 5)

    def polls() -> int:
        return webui.paths().count("/sdapi/v1/progress")

    await clock.advance(0.7)
    assert polls() == 0
    await clock.advance(0.05)
    await eventually(lambda: polls() == 1)
    await clock.advance(0.75)
    await eventually(lambda: polls() == 2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert webui.interrupts == 1 and webui.current is None


async def test_cancel_while_someone_elses_job_runs_leaves_theirs_alone(webui: FakeA1111) -> None:
    theirs = await webui.occupy()
    clock = FakeClock()
    p = a1111(webui, clock)
    progress = Progress()
    task = asyncio.create_task(p.generate(make_call(provider=p), progress))
    async with pumping(clock):
        await eventually(lambda: any("busy with another job" in u.text for u in progress.updates))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert webui.interrupts == 0 and not theirs.interrupted
    webui.release(theirs)


async def test_a_variation_is_img2img_with_denoising_and_a_variation_seed(webui: FakeA1111) -> None:
    clock = FakeClock()
    p = a1111(webui, clock, variation_seed_strength=0.3)
    source = png(64, 64, "source")
    call = make_call("same castle", provider=p, init=source, kind=JobKind.VARIATION, source_job_id="j",
                     source_image_index=0, strength=0.45)
    async with pumping(clock):
        [image] = await run(p, call)
    body = next(r.json for r in webui.received if r.path == "/sdapi/v1/img2img")
    assert base64.b64decode(body["init_images"][0]) == source
    assert body["denoising_strength"] == 0.45 and body["subseed_strength"] == 0.3 and body["subseed"] == 8
    assert image.seed == 7 and webui.violations == []


async def test_upscale_goes_through_extra_single_image(webui: FakeA1111) -> None:
    p = a1111(webui, upscaler="R-ESRGAN 4x+", upscale_factor=2)
    call = make_call(provider=p, init=png(48, 32, "small"), kind=JobKind.UPSCALE, source_job_id="j",
                     source_image_index=0, count=1)
    [image] = await run(p, call)
    assert (image.width, image.height) == (96, 64)
    body = next(r.json for r in webui.received if r.path == "/sdapi/v1/extra-single-image")
    assert body["upscaler_1"] == "R-ESRGAN 4x+" and body["upscaling_resize"] == 2


async def test_models_and_samplers_are_discovered_for_autocomplete(webui: FakeA1111) -> None:
    p = a1111(webui)
    assert await p.models() == [m["title"] for m in MODELS]
    assert await p.samplers() == SAMPLERS


async def test_capabilities_are_declared_and_checked_before_any_call(webui: FakeA1111) -> None:
    p = a1111(webui, max_images_per_call=2)
    caps = p.capabilities
    assert caps.negative_prompt and caps.seed and caps.deterministic and caps.image_input
    assert caps.upscale and caps.live_previews and caps.steps and caps.cfg and caps.aspect_ratios is None
    with pytest.raises(ProviderBadRequest, match="at most 2"):
        await run(p, make_call(provider=p, count=3))
    assert webui.received == []


# --- setup mistakes ----------------------------------------------------------------------------
async def test_nothing_listening_is_unavailable_with_a_hint(webui: FakeA1111) -> None:
    p = a1111(webui)
    await webui.close()
    with pytest.raises(ProviderUnavailable, match=r"nothing answers at http://127\.0\.0\.1:\d+ \(connection refused\)"):
        await run(p, make_call(provider=p))
    health = await p.health()
    assert not health.ok and "is the WebUI running" in health.detail and "\n" not in health.detail


async def test_a_webui_without_api_says_to_start_it_with_api() -> None:
    fake = FakeA1111(api=False)
    await fake.start()
    try:
        p = a1111(fake)
        health = await p.health()
        assert not health.ok
        assert health.detail == f"http://127.0.0.1:{fake.port} answers but /sdapi/v1 is missing: " \
                                "start the WebUI with --api"
        with pytest.raises(ProviderUnavailable, match="start the WebUI with --api"):
            await run(p, make_call(provider=p))
    finally:
        await fake.close()


async def test_an_address_that_is_not_a_webui_says_so() -> None:
    other = FakeComfyUI()
    await other.start()
    try:
        health = await a1111(f"http://127.0.0.1:{other.port}").health()
        assert not health.ok
        assert health.detail == f"http://127.0.0.1:{other.port} answers, but it is not an AUTOMATIC1111/Forge " \
                                "WebUI (no /sdapi/v1): check the address"
    finally:
        await other.close()


@pytest.mark.parametrize("suffix", ["/", "//", "/sdapi/v1", "/sdapi/v1/"])
async def test_trailing_slashes_and_a_pasted_api_path_are_dropped(webui: FakeA1111, suffix: str) -> None:
    p = a1111(f"127.0.0.1:{webui.port}{suffix}")
    assert [s.url for s in p.pool.servers] == [f"http://127.0.0.1:{webui.port}"]
    assert (await p.health()).ok


async def test_api_auth_is_sent_and_never_leaks(
    webui: FakeA1111, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every level, so a key in a debug line is caught too
    webui.auth = "bot:hunter2-very-secret"
    without = a1111(webui)
    with pytest.raises(ProviderQuota, match="--api-auth") as caught:
        await run(without, make_call(provider=without))
    health = await without.health()
    assert not health.ok and health.detail == f'http://127.0.0.1:{webui.port} wants a login (--api-auth): ' \
                                              'set api_auth = "user:pass"'
    clock = FakeClock()
    with_auth = a1111(webui, clock, api_auth="bot:hunter2-very-secret")
    async with pumping(clock):
        assert len(await run(with_auth, make_call(provider=with_auth))) == 1
    assert_never_logged(caplog, "hunter2-very-secret", caught.value.message, health.detail)


@pytest.mark.parametrize(("section", "problem"), [
    ({"api_key": "x"}, "providers.webui.api_key"),
    ({"base_url": "ftp://host"}, "providers.webui.base_url"),
    ({"base_url": None}, "base_url is required"),
    ({"api_auth": "no-colon"}, "providers.webui.api_auth"),
])
def test_config_mistakes_name_the_key(section: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        provider("webui", {"type": "a1111", "base_url": "http://127.0.0.1:7860", **section})


# --- errors --------------------------------------------------------------------------------------
async def test_errors_are_classified_at_the_boundary(webui: FakeA1111) -> None:
    p = a1111(webui, sampler="Nope")
    with pytest.raises(ProviderBadRequest, match="Sampler not found"):
        await run(p, make_call(provider=p))
    p = a1111(webui)
    webui.faults = [Fault(status=500, body={"error": "OutOfMemoryError", "detail": "CUDA out of memory"})]
    with pytest.raises(ProviderUnavailable, match="CUDA out of memory"):
        await run(p, make_call(provider=p))
    webui.faults = [Fault(status=200, raw=b'{"images": [')]
    p = a1111(webui)
    with pytest.raises(ProviderUnavailable, match="malformed"):
        await run(p, make_call(provider=p))


async def test_a_call_past_the_timeout_is_interrupted_on_the_server(webui: FakeA1111) -> None:
    webui.hold = True
    p = a1111(webui, timeout_seconds=0.3)
    with pytest.raises(ProviderTimeout):
        await run(p, make_call(provider=p))
    assert webui.interrupts == 1


# --- several servers ------------------------------------------------------------------------------
async def test_several_servers_take_calls_least_busy_first(webui: FakeA1111) -> None:
    other = FakeA1111()
    await other.start()
    try:
        webui.hold = other.hold = True
        clock = FakeClock()
        p = a1111([f"http://127.0.0.1:{webui.port}", f"http://127.0.0.1:{other.port}/"], clock)
        assert p.concurrency == 2
        first = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
        await asyncio.wait_for(webui.started.wait(), 5)
        second = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
        await asyncio.wait_for(other.started.wait(), 5)
        for fake in (webui, other):
            assert fake.current is not None
            fake.current.done.set()
        async with pumping(clock):
            assert len(await asyncio.wait_for(first, 5)) == len(await asyncio.wait_for(second, 5)) == 1
    finally:
        await other.close()


async def test_an_unreachable_server_is_skipped_at_once(webui: FakeA1111) -> None:
    dead = FakeA1111()
    await dead.start()
    await dead.close()
    clock = FakeClock()
    p = a1111([f"http://127.0.0.1:{dead.port}", f"http://127.0.0.1:{webui.port}"], clock, recheck_seconds=30)
    async with pumping(clock, step=0.05):
        assert len(await run(p, make_call(provider=p))) == 1
    down, up = p.pool.servers
    assert not down.up and "connection refused" in down.reason and up.up
    health = await p.health()
    assert health.ok and health.detail.startswith("1 of 2 servers up;") and "is the WebUI running" in health.detail
    webui.hold = True
    webui.started.clear()
    task = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
    await asyncio.wait_for(webui.started.wait(), 5)
    assert len([r for r in webui.received if r.path == "/sdapi/v1/txt2img"]) == 2  # the dead one was not retried
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_when_every_server_is_down_the_error_lists_them(webui: FakeA1111) -> None:
    await webui.close()
    p = a1111([f"http://127.0.0.1:{webui.port}", "http://127.0.0.1:9"])
    with pytest.raises(ProviderUnavailable, match="all 2 servers are down") as caught:
        await run(p, make_call(provider=p))
    assert caught.value.message.count("connection refused") == 2


async def test_a_failed_server_is_probed_again_after_recheck_seconds(webui: FakeA1111) -> None:
    other = FakeA1111()
    await other.start()
    try:
        webui.always = Fault(status=503, body={"detail": "warming up"})
        clock = FakeClock()
        p = a1111([f"http://127.0.0.1:{webui.port}", f"http://127.0.0.1:{other.port}"], clock, recheck_seconds=30)
        with pytest.raises(ProviderUnavailable, match="warming up"):
            await run(p, make_call(provider=p))
        async with pumping(clock, step=0.05):
            await run(p, make_call(provider=p))
        assert not p.pool.servers[0].up and len(other.paths()) >= 1
        webui.always = None
        await clock.advance(30)
        async with pumping(clock, step=0.05):
            await run(p, make_call(provider=p))
        assert p.pool.servers[0].up
        # The failed call, then the probe once 30 s had passed, then a call again.
        assert webui.paths()[:3] == ["/sdapi/v1/txt2img", "/sdapi/v1/progress", "/sdapi/v1/txt2img"]
    finally:
        await other.close()


async def test_a_lone_server_that_failed_is_tried_again_at_once(webui: FakeA1111) -> None:
    webui.faults = [Fault(status=502, body={"detail": "Bad Gateway"})]
    clock = FakeClock()
    p = a1111(webui, clock, recheck_seconds=30)
    with pytest.raises(ProviderUnavailable):
        await run(p, make_call(provider=p))
    assert not p.pool.servers[0].up
    async with pumping(clock, step=0.05):
        assert len(await run(p, make_call(provider=p))) == 1  # no waiting out recheck_seconds
    assert p.pool.servers[0].up
