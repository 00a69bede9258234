"""The AI Horde provider against the fake Horde API and file host, through its real aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot import images as imaging
from bot.clock import FakeClock
from bot.errors import ConfigError, ProviderQuota, ProviderRefused, ProviderTimeout, ProviderUnavailable
from bot.request import GenerationRequest, JobKind
from providers.horde import HordeProvider
from tests.fakes.horde_api import API_KEY, BANNED, FakeHorde, horde_error
from tests.fakes.provider_http import png
from tests.providers.conftest import Progress, make_call, provider, run
from tests.providers.selfhosted_support import assert_never_logged, eventually, pumping


@pytest.fixture
async def horde_fake() -> AsyncIterator[FakeHorde]:
    fake = FakeHorde()
    await fake.start()
    yield fake
    await fake.close()


def horde(fake: FakeHorde, clock: FakeClock | None = None, **settings: Any) -> HordeProvider:
    section = {"type": "horde", "base_url": f"http://127.0.0.1:{fake.port}/api/", **settings}
    built = provider("horde", section, clock)
    assert isinstance(built, HordeProvider)
    return built


def submitted(fake: FakeHorde) -> Any:
    return [r for r in fake.received if r.path == "/api/v2/generate/async"][-1]


async def finish(p: HordeProvider, clock: FakeClock, call: Any, progress: Progress | None = None) -> Any:
    async with pumping(clock, step=1.0):
        return await run(p, call, progress)


async def test_a_request_carries_the_negative_prompt_after_the_separator_and_the_flags(
    horde_fake: FakeHorde,
) -> None:
    clock = FakeClock()
    p = horde(horde_fake, clock)
    made = await finish(p, clock, make_call("a fox", count=2, provider=p, negative_prompt="blurry", steps=20, cfg=6.25))
    got = submitted(horde_fake)
    assert got.headers["apikey"] == "0000000000" and got.headers["client-agent"].startswith("imaginebot:")
    body = got.json
    assert body["prompt"] == "a fox ### blurry"
    assert body["params"] == {"sampler_name": "k_euler_a", "cfg_scale": 6.25, "seed": "7", "width": 512,
                              "height": 512, "steps": 20, "n": 2, "karras": True}
    assert body["models"] == ["stable_diffusion"] and body["nsfw"] is False and body["censor_nsfw"] is True
    assert [i.seed for i in made] == [7, 8] and all(i.mime == "image/webp" and i.cost_usd == 0 for i in made)
    assert made[0].info == {"kudos": "12", "worker": "fake-gpu"}
    assert len(horde_fake.files.received) == 2 and horde_fake.violations == []  # the key never went to R2


async def test_queue_position_and_eta_are_reported_while_polling_on_the_injected_clock(
    horde_fake: FakeHorde,
) -> None:
    horde_fake.queue_checks = 2
    clock = FakeClock()
    p = horde(horde_fake, clock, poll_seconds=2.0)
    progress = Progress()
    task = asyncio.create_task(p.generate(make_call(provider=p), progress))
    await eventually(lambda: len(horde_fake.paths("GET")) == 1)

    def checks() -> int:
        return sum(1 for path in horde_fake.paths("GET") if "/check/" in path)

    await clock.advance(1.9)
    assert checks() == 1
    await clock.advance(0.1)
    await eventually(lambda: checks() == 2)
    async with pumping(clock, step=1.0):
        [image] = await asyncio.wait_for(task, 5)
    waiting = [(u.queue_position, u.eta_seconds) for u in progress.updates if u.queue_position is not None]
    assert waiting == [(1, 20.0), (0, 10.0)]
    assert progress.updates[-1].text.startswith("a worker is drawing")
    assert image.width == 64


async def test_images_can_come_inline_as_base64_webp(horde_fake: FakeHorde) -> None:
    clock = FakeClock()
    p = horde(horde_fake, clock, r2=False)
    [image] = await finish(p, clock, make_call(provider=p))
    assert image.mime == "image/webp" and horde_fake.files.received == []


async def test_image_input_is_sent_as_webp_with_a_denoising_strength(horde_fake: FakeHorde) -> None:
    clock = FakeClock()
    p = horde(horde_fake, clock)
    call = make_call(provider=p, init=png(64, 64, "source"), kind=JobKind.VARIATION, source_job_id="j",
                     source_image_index=0, strength=0.5)
    await finish(p, clock, call)
    body = submitted(horde_fake).json
    assert body["source_processing"] == "img2img" and body["params"]["denoising_strength"] == 0.5
    assert imaging.image_info(base64.b64decode(body["source_image"])).mime == "image/webp"


async def test_cancel_withdraws_the_request_and_propagates(horde_fake: FakeHorde) -> None:
    horde_fake.hold = True
    clock = FakeClock()
    p = horde(horde_fake, clock)
    task = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
    await eventually(lambda: len(horde_fake.requests) == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [request] = horde_fake.requests.values()
    assert request.cancelled and horde_fake.paths("DELETE") == [f"/api/v2/generate/status/{request.id}"]


async def test_a_timeout_or_an_impossible_request_is_withdrawn(horde_fake: FakeHorde) -> None:
    horde_fake.hold = True
    clock = FakeClock()
    p = horde(horde_fake, clock, timeout_seconds=0.3)
    with pytest.raises(ProviderTimeout):
        await finish(p, clock, make_call(provider=p))
    horde_fake.hold, horde_fake.impossible = False, True
    with pytest.raises(ProviderUnavailable, match="no AI Horde worker can take this request"):
        await finish(horde(horde_fake, clock), clock, make_call(provider=p))
    assert len(horde_fake.paths("DELETE")) == 2 and all(r.cancelled for r in horde_fake.requests.values())


async def test_censored_images_are_a_refusal(horde_fake: FakeHorde) -> None:
    horde_fake.censor = True
    clock = FakeClock()
    p = horde(horde_fake, clock)
    with pytest.raises(ProviderRefused, match="safety filter censored"):
        await finish(p, clock, make_call(provider=p))


async def test_horde_errors_are_classified_and_the_key_never_leaks(
    horde_fake: FakeHorde, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every level, so a key in a debug line is caught too
    clock = FakeClock()
    wrong = horde(horde_fake, clock, api_key="hordeKey-not-the-right-one-42")
    with pytest.raises(ProviderQuota, match="the API key was not accepted") as bad_key:
        await run(wrong, make_call(provider=wrong))
    anonymous = horde(horde_fake, clock, size=1536)
    with pytest.raises(ProviderQuota, match="not enough kudos: Due to heavy demand"):
        await run(anonymous, make_call(provider=anonymous))
    keyed = horde(horde_fake, clock, api_key=API_KEY)
    with pytest.raises(ProviderRefused, match="violate our terms"):
        await run(keyed, make_call(f"a {BANNED}", provider=keyed))
    horde_fake.check_faults.append(horde_error(429, "Rate limit exceeded: 2 per 1 second", "TooManyPrompts"))
    [image] = await finish(keyed, clock, make_call(provider=keyed))  # a throttled check is waited out
    assert image.width == 64
    health = await wrong.health()
    assert not health.ok and "not accepted" in health.detail
    assert_never_logged(caplog, API_KEY, bad_key.value.message, health.detail)
    assert_never_logged(caplog, "hordeKey-not-the-right-one-42", bad_key.value.message, health.detail)


async def test_nsfw_is_asked_for_only_when_config_and_the_channel_allow_it(horde_fake: FakeHorde) -> None:
    clock = FakeClock()
    p = horde(horde_fake, clock, nsfw=True, models=["AlbedoBase XL (SDXL)", "Juggernaut XL"])
    assert p.model == "AlbedoBase XL (SDXL)"
    channel_policy = "nsfw_allowed" in GenerationRequest.model_fields
    extra = {"nsfw_allowed": True} if channel_policy else {}
    await finish(p, clock, make_call(provider=p, **extra))
    body = submitted(horde_fake).json
    assert body["nsfw"] is True and body["censor_nsfw"] is False
    assert body["models"] == ["AlbedoBase XL (SDXL)", "Juggernaut XL"]
    if channel_policy:
        await finish(p, clock, make_call(provider=p))
        assert submitted(horde_fake).json["nsfw"] is False


async def test_health_shows_who_and_how_many_kudos(horde_fake: FakeHorde) -> None:
    assert (await horde(horde_fake).health()).detail.startswith("anonymous")
    health = await horde(horde_fake, api_key=API_KEY).health()
    assert health.ok and health.detail == "user imaginebot#4242, 1500 kudos"
    await horde_fake.close()
    health = await horde(horde_fake).health()
    assert not health.ok and "nothing answers" in health.detail


def test_capabilities_and_config() -> None:
    p = provider("horde", {"type": "horde"})
    assert isinstance(p, HordeProvider)
    caps = p.capabilities
    assert caps.negative_prompt and caps.seed and caps.image_input and caps.steps and caps.cfg
    assert not (caps.upscale or caps.live_previews or caps.deterministic)
    assert p.base == "https://aihorde.net/api/v2" and p.estimate_cost(make_call(provider=p)) == 0
    with pytest.raises(ConfigError, match="providers.horde.client_agent"):
        provider("horde", {"type": "horde", "client_agent": "no contact"})


async def test_an_expired_request_is_unavailable(horde_fake: FakeHorde) -> None:
    clock = FakeClock()
    p = horde(horde_fake, clock)
    horde_fake.check_faults.append(horde_error(404, "Waiting Prompt with ID 'x' not found.", "RequestNotFound"))
    with pytest.raises(ProviderUnavailable, match="expired"):
        await finish(p, clock, make_call(provider=p))
    assert horde_fake.paths("DELETE") != []  # and withdrawn, in case it still exists
