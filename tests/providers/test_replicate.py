"""The Replicate provider against the fake predictions API and file host, through its real aiohttp client."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.errors import (
    ConfigError,
    ProviderBadRequest,
    ProviderQuota,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.request import AspectRatio, JobKind
from providers.replicate import ReplicateProvider
from tests.fakes.provider_http import Fault, png
from tests.fakes.replicate_api import FLUX, NSFW_ERROR, SDXL, SDXL_VERSION, TOKEN, FakeReplicate, problem
from tests.providers.conftest import Progress, make_call, provider, run
from tests.providers.selfhosted_support import assert_never_logged, eventually, pumping

SDXL_SECTION = {
    "model": f"{SDXL}:{SDXL_VERSION}", "sizing": "width_height", "negative_prompt_input": "negative_prompt",
    "steps_input": "num_inference_steps", "cfg_input": "guidance_scale", "image_input": "image",
    "strength_input": "prompt_strength", "usd_per_second": 0.002, "prices": {},
}


@pytest.fixture
async def replicate_fake() -> AsyncIterator[FakeReplicate]:
    fake = FakeReplicate()
    await fake.start()
    yield fake
    await fake.close()


def replicate(fake: FakeReplicate, clock: FakeClock | None = None, **settings: Any) -> ReplicateProvider:
    section = {"type": "replicate", "api_key": TOKEN, "base_url": f"http://127.0.0.1:{fake.port}/v1/",
               "model": FLUX, "input": {"output_format": "png"}, "prices": {"per_image": {"default": 0.003}},
               **settings}
    built = provider("replicate", section, clock)
    assert isinstance(built, ReplicateProvider)
    return built


def creates(fake: FakeReplicate) -> list[Any]:
    return [r for r in fake.received if r.method == "POST" and r.path.endswith("/predictions")]


async def test_flux_schnell_is_created_on_the_models_endpoint_with_a_bounded_wait(
    replicate_fake: FakeReplicate,
) -> None:
    p = replicate(replicate_fake)
    made = await run(p, make_call("a fox", count=2, provider=p, aspect_ratio="16:9"))
    [create] = creates(replicate_fake)
    assert create.path == f"/v1/models/{FLUX}/predictions"
    assert create.headers["prefer"] == "wait=30" and create.headers["cancel-after"] == "300s"
    assert create.json == {"input": {"output_format": "png", "prompt": "a fox", "num_outputs": 2,
                                     "aspect_ratio": "16:9", "seed": 7}}
    assert len(made) == 2 and [i.seed for i in made] == [7, 8]
    assert all(abs(i.width / i.height - 16 / 9) < 0.02 and i.cost_usd == 0.003 for i in made)
    assert len(replicate_fake.files.received) == 2  # downloaded at once, from the file host
    assert replicate_fake.violations == []  # and the token never went there


async def test_ratio_labels_are_sent_as_the_model_lists_them(replicate_fake: FakeReplicate) -> None:
    p = replicate(replicate_fake)
    await run(p, make_call(provider=p, aspect_ratio="21:9"))
    assert creates(replicate_fake)[-1].json["input"]["aspect_ratio"] == "21:9"  # not the reduced 7:3
    assert not p.capabilities.supports_ratio(AspectRatio.parse("2:1"))


async def test_sdxl_by_version_takes_sizes_negative_steps_cfg_and_an_image(replicate_fake: FakeReplicate) -> None:
    p = replicate(replicate_fake, **SDXL_SECTION, input={})
    caps = p.capabilities
    assert caps.negative_prompt and caps.steps and caps.cfg and caps.image_input and caps.aspect_ratios is None
    source = png(64, 64, "source")
    call = make_call("a fox", count=2, provider=p, aspect_ratio="3:2", negative_prompt="blur", steps=30, cfg=6.0,
                     init=source, kind=JobKind.VARIATION, source_job_id="j", source_image_index=0, strength=0.4)
    made = await run(p, call)
    [create] = creates(replicate_fake)
    assert create.path == "/v1/predictions" and create.json["version"] == SDXL_VERSION
    given = create.json["input"]
    assert (given["width"], given["height"]) == (1280, 832) and given["negative_prompt"] == "blur"
    assert (given["num_inference_steps"], given["guidance_scale"], given["prompt_strength"]) == (30, 6.0, 0.4)
    assert given["image"].startswith("data:image/png;base64,")
    assert base64.b64decode(given["image"].partition(",")[2]) == source
    assert all(i.cost_usd == pytest.approx(1.5 * 0.002 / 2) for i in made)  # predict_time x price, shared
    assert p.estimate_cost(call) == pytest.approx(0.002 * 10)


async def test_a_slow_prediction_is_polled_on_the_injected_clock(replicate_fake: FakeReplicate) -> None:
    replicate_fake.polls_to_finish = 4
    clock = FakeClock()
    p = replicate(replicate_fake, clock, poll_seconds=1.0)
    progress = Progress()
    task = asyncio.create_task(p.generate(make_call(provider=p), progress))
    await eventually(lambda: len(creates(replicate_fake)) == 1)

    def polls() -> int:
        return sum(1 for r in replicate_fake.received if r.method == "GET" and "/predictions/" in r.path)

    await clock.advance(0.9)
    assert polls() == 0
    await clock.advance(0.1)
    await eventually(lambda: polls() == 1)
    async with pumping(clock, step=0.5):
        [image] = await asyncio.wait_for(task, 5)
    assert polls() == 4 and image.width == 128
    texts = [u.text for u in progress.updates]
    assert texts[0].startswith("starting the model") and "step 1/4" in texts
    assert [u.fraction for u in progress.updates if u.fraction is not None] == [0.25, 0.5, 0.75]


async def test_cancel_cancels_the_prediction_and_propagates(replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    clock = FakeClock()
    p = replicate(replicate_fake, clock)
    task = asyncio.create_task(p.generate(make_call(provider=p), Progress()))
    async with pumping(clock):
        await eventually(lambda: any(r.method == "GET" for r in replicate_fake.received))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert replicate_fake.paths()[-1] == "/v1/predictions/pred0001/cancel"
    assert replicate_fake.predictions["pred0001"]["status"] == "canceled"


async def test_a_timeout_cancels_the_prediction_too(replicate_fake: FakeReplicate) -> None:
    replicate_fake.hold = True
    clock = FakeClock()
    p = replicate(replicate_fake, clock, timeout_seconds=0.3)
    with pytest.raises(ProviderTimeout):
        async with pumping(clock):
            await run(p, make_call(provider=p))
    assert replicate_fake.predictions["pred0001"]["status"] == "canceled"


async def test_outputs_given_inline_as_data_urls_are_decoded(replicate_fake: FakeReplicate) -> None:
    replicate_fake.data_urls = True
    p = replicate(replicate_fake)
    [image] = await run(p, make_call(provider=p))
    assert image.mime == "image/png" and replicate_fake.files.received == []


async def test_an_nsfw_failure_is_a_refusal_and_other_failures_are_not_retried(
    replicate_fake: FakeReplicate,
) -> None:
    replicate_fake.fail_with = NSFW_ERROR
    p = replicate(replicate_fake)
    with pytest.raises(ProviderRefused) as refused:
        await run(p, make_call(provider=p))
    assert refused.value.reason == NSFW_ERROR
    replicate_fake.fail_with = "CUDA error: device-side assert triggered"
    with pytest.raises(ProviderBadRequest, match="the model failed: CUDA error"):
        await run(p, make_call(provider=p))


@pytest.mark.parametrize(("fault", "error", "text"), [
    (problem(429, "Too Many Requests", "Request was throttled. Your rate limit resets in ~30s."),
     ProviderRateLimited, "throttled"),
    (problem(402, "Payment Required", "You have insufficient credit to run this model."), ProviderQuota, "credit"),
    (problem(503, "Service Unavailable", "Service temporarily unavailable"), ProviderUnavailable, "unavailable"),
])
async def test_http_failures_are_classified(
    replicate_fake: FakeReplicate, caplog: pytest.LogCaptureFixture, fault: Any, error: type[Exception], text: str
) -> None:
    caplog.set_level(logging.DEBUG)  # every level, so a key in a debug line is caught too
    replicate_fake.faults.append(Fault(status=fault.status, raw=fault.body))
    p = replicate(replicate_fake)
    with pytest.raises(error, match=text) as caught:
        await run(p, make_call(provider=p))
    if isinstance(caught.value, ProviderRateLimited):
        assert caught.value.retry_after == 30
    assert_never_logged(caplog, TOKEN, str(caught.value))


async def test_bad_inputs_a_bad_model_and_a_bad_token(
    replicate_fake: FakeReplicate, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every level, so a key in a debug line is caught too
    p = replicate(replicate_fake, input={"bogus": 1})
    with pytest.raises(ProviderBadRequest, match="input.bogus: Additional property bogus") as bad_input:
        await run(p, make_call(provider=p))
    p = replicate(replicate_fake, model="someone/nothing-here")
    with pytest.raises(ProviderBadRequest, match="Replicate has no model someone/nothing-here"):
        await run(p, make_call(provider=p))
    replicate_fake.token = "r8_another_token"
    p = replicate(replicate_fake)
    with pytest.raises(ProviderQuota, match="not accepted") as bad_key:
        await run(p, make_call(provider=p))
    health = await p.health()
    assert not health.ok and "not accepted" in health.detail
    assert_never_logged(caplog, TOKEN, bad_input.value.message, bad_key.value.message, health.detail)


async def test_health_looks_up_the_model(replicate_fake: FakeReplicate) -> None:
    assert (await replicate(replicate_fake).health()).detail == f"model {FLUX}"
    assert (await replicate(replicate_fake, **SDXL_SECTION).health()).detail == f"model {SDXL}:{SDXL_VERSION}"
    await replicate_fake.close()
    health = await replicate(replicate_fake).health()
    assert not health.ok and "nothing answers" in health.detail


@pytest.mark.parametrize("model", ["flux-schnell", "stability-ai/sdxl:abc", ""])
def test_a_malformed_model_is_a_config_error(model: str) -> None:
    with pytest.raises(ConfigError, match="providers.replicate.model"):
        provider("replicate", {"type": "replicate", "api_key": TOKEN, "model": model})


async def test_image_data_sent_is_an_image(replicate_fake: FakeReplicate) -> None:
    p = replicate(replicate_fake, **SDXL_SECTION)
    call = make_call(provider=p, init=b"not an image", kind=JobKind.VARIATION, source_job_id="j",
                     source_image_index=0)
    with pytest.raises(ProviderBadRequest, match="input image is unusable"):
        await run(p, call)
    assert creates(replicate_fake) == []
