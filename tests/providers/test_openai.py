"""The OpenAI provider against the fake Images API, through the real openai SDK."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

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
from providers.base import BaseProvider
from tests.fakes import openai_api
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.provider_http import png
from tests.providers.conftest import Progress, make_call, provider, run

PRICES = {"per_image": {"low": 0.011, "medium": 0.042, "high": 0.167}, "non_square_factor": 1.5,
          "input_text_per_million": 5.0, "input_image_per_million": 10.0, "output_image_per_million": 40.0}


def openai(fake: FakeOpenAI, clock: FakeClock | None = None, **settings: Any) -> BaseProvider:
    section = {"type": "openai", "api_key": fake.api_key, "base_url": f"http://127.0.0.1:{fake.port}/v1",
               "model": "gpt-image-1", "partial_images": 0, "prices": PRICES, **settings}
    return provider("openai", section, clock)


async def test_a_generation_sends_n_size_from_the_ratio_and_quality(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake)
    call = make_call("a lighthouse", count=3, provider=p, aspect_ratio="16:9", quality="high")
    made = await run(p, call)
    assert [(i.width, i.height, i.mime) for i in made] == [(1536, 1024, "image/png")] * 3
    sent = openai_fake.received[-1].json
    assert sent == {"model": "gpt-image-1", "prompt": "a lighthouse", "n": 3, "size": "1536x1024", "quality": "high"}
    assert openai_fake.violations == []
    assert {i.provider for i in made} == {"openai"} and {i.model for i in made} == {"gpt-image-1"}


@pytest.mark.parametrize(("ratio", "size"), [("1:1", "1024x1024"), ("2:3", "1024x1536"), ("9:16", "1024x1536"),
                                             ("4:3", "1536x1024")])
async def test_the_nearest_size_the_model_offers_is_used(openai_fake: FakeOpenAI, ratio: str, size: str) -> None:
    p = openai(openai_fake)
    assert "x".join(map(str, p.size_for(AspectRatio.parse(ratio)))) == size


async def test_a_model_with_free_sizes_gets_the_ratio_itself(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake, model="gpt-image-2", free_size_pixels=1024 * 1024)
    made = await run(p, make_call("wide", provider=p, aspect_ratio="16:9"))
    width, height = made[0].width, made[0].height
    assert (width % 16, height % 16) == (0, 0) and abs(width / height - 16 / 9) < 0.02
    assert openai_fake.violations == []


async def test_icons_get_a_transparent_background_and_formats_are_passed(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake)
    [icon] = await run(p, make_call("a fox app icon", provider=p))
    assert openai_fake.received[-1].json["background"] == "transparent"
    assert Image.open(io.BytesIO(icon.data)).mode == "RGBA"
    await run(p, make_call("a fox in the snow", provider=p))
    assert "background" not in openai_fake.received[-1].json
    webp = openai(openai_fake, output_format="webp", output_compression=80, moderation="low")
    await run(webp, make_call("a fox avatar", provider=webp))
    sent = openai_fake.received[-1].json
    assert (sent["output_format"], sent["output_compression"], sent["moderation"], sent["background"]) == (
        "webp", 80, "low", "transparent")
    assert openai_fake.violations == []


async def test_cost_comes_from_token_usage_and_the_price_table(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake)
    call = make_call("one two three", count=2, provider=p, quality="low")
    made = await run(p, call)
    # 3 text tokens at $5/M + 2 x 272 image tokens at $40/M, shared by the two images.
    expected = (3 * 5 + 2 * 272 * 40) / 1_000_000 / 2
    assert [i.cost_usd for i in made] == pytest.approx([expected, expected])
    assert p.estimate_cost(call) == pytest.approx(2 * 0.011)
    wide = make_call("x", provider=p, quality="high", aspect_ratio="3:2")
    assert p.estimate_cost(wide) == pytest.approx(0.167 * 1.5)


async def test_partial_images_stream_to_the_progress_reporter(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake, partial_images=2)
    progress = Progress()
    [image] = await run(p, make_call("a harbour", provider=p), progress)
    previews = [u for u in progress.updates if u.preview]
    assert len(previews) == 2
    assert [u.fraction for u in previews] == pytest.approx([1 / 3, 2 / 3])
    assert Image.open(io.BytesIO(previews[0].preview or b"")).format == "WEBP"
    sent = openai_fake.received[-1].json
    assert (sent["stream"], sent["partial_images"]) == (True, 2)
    assert image.width == 1024 and image.cost_usd > 0 and p.capabilities.live_previews


async def test_a_variation_goes_to_the_edits_endpoint_as_multipart(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake, input_fidelity=True)
    call = make_call("a harbour", provider=p, init=png(64, 64, "source"), kind=JobKind.VARIATION,
                     source_job_id="j1", source_image_index=0, strength=0.2)
    [image] = await run(p, call)
    got = openai_fake.received[-1]
    assert got.path == "/v1/images/edits" and len(got.files["image"]) == 1 and "mask" not in got.files
    assert got.form["prompt"] == "a harbour" and got.form["input_fidelity"] == "high"
    assert got.files["image"][0] == png(64, 64, "source")
    assert openai_fake.violations == []
    # usage counts the source image's input tokens at the image-input price
    assert image.cost_usd == pytest.approx((2 * 5 + 194 * 10 + 1056 * 40) / 1e6)


async def test_transparent_pixels_of_the_source_become_the_mask(openai_fake: FakeOpenAI) -> None:
    source = Image.new("RGBA", (64, 64), (200, 10, 10, 255))
    source.paste((0, 0, 0, 0), (0, 0, 32, 64))
    out = io.BytesIO()
    source.save(out, "PNG")
    p = openai(openai_fake, partial_images=1)
    progress = Progress()
    await run(p, make_call("fill the left half with sea", provider=p, init=out.getvalue()), progress)
    got = openai_fake.received[-1]
    mask = Image.open(io.BytesIO(got.files["mask"][0]))
    assert mask.size == (64, 64) and mask.getpixel((0, 0))[3] == 0 and mask.getpixel((63, 0))[3] == 255
    assert got.form["stream"] == "true" and [u for u in progress.updates if u.preview]
    assert openai_fake.violations == []


# --- faults ---------------------------------------------------------------------------------------
async def test_a_429_carries_retry_after(openai_fake: FakeOpenAI, no_secrets_logged: list[str]) -> None:
    openai_fake.faults.append(openai_api.rate_limited(retry_after=7))
    p = openai(openai_fake)
    with pytest.raises(ProviderRateLimited) as caught:
        await run(p, make_call(provider=p))
    assert caught.value.retry_after == 7 and len(openai_fake.received) == 1  # the SDK did not retry
    no_secrets_logged.append(str(caught.value))


async def test_insufficient_quota_is_for_the_admin_not_a_rate_limit(
    openai_fake: FakeOpenAI, no_secrets_logged: list[str]
) -> None:
    openai_fake.faults.append(openai_api.quota())
    p = openai(openai_fake)
    with pytest.raises(ProviderQuota) as caught:
        await run(p, make_call(provider=p))
    assert not caught.value.retryable
    no_secrets_logged.append(caught.value.message)


async def test_a_moderation_refusal_keeps_the_providers_reason(
    openai_fake: FakeOpenAI, no_secrets_logged: list[str]
) -> None:
    openai_fake.faults.append(openai_api.moderation())
    p = openai(openai_fake)
    with pytest.raises(ProviderRefused) as caught:
        await run(p, make_call(provider=p))
    assert "rejected by the safety system" in caught.value.reason
    assert not caught.value.retryable and not caught.value.falls_back
    no_secrets_logged.append(caught.value.reason)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(
    openai_fake: FakeOpenAI, no_secrets_logged: list[str], status: int
) -> None:
    openai_fake.faults.append(openai_api.server_error(status))
    p = openai(openai_fake)
    with pytest.raises(ProviderUnavailable) as caught:
        await run(p, make_call(provider=p))
    assert caught.value.falls_back and caught.value.retryable
    no_secrets_logged.append(caught.value.message)


async def test_a_hang_past_the_timeout_is_a_timeout(openai_fake: FakeOpenAI, no_secrets_logged: list[str]) -> None:
    openai_fake.faults.append(openai_api.hang(3.0))
    p = openai(openai_fake, timeout_seconds=0.3)
    with pytest.raises(ProviderTimeout) as caught:
        await run(p, make_call(provider=p))
    no_secrets_logged.append(caught.value.message)


async def test_a_malformed_body_is_unavailable_not_a_crash(
    openai_fake: FakeOpenAI, no_secrets_logged: list[str]
) -> None:
    openai_fake.faults.append(openai_api.malformed())
    p = openai(openai_fake)
    with pytest.raises(ProviderUnavailable, match="malformed") as caught:
        await run(p, make_call(provider=p))
    no_secrets_logged.append(caught.value.message)


async def test_an_error_in_the_middle_of_a_stream(openai_fake: FakeOpenAI, no_secrets_logged: list[str]) -> None:
    openai_fake.stream_error = {"message": "Your request was rejected by the safety system.",
                                "type": "image_generation_user_error", "code": "moderation_blocked"}
    p = openai(openai_fake, partial_images=2)
    progress = Progress()
    with pytest.raises(ProviderRefused) as caught:
        await run(p, make_call(provider=p), progress)
    assert len([u for u in progress.updates if u.preview]) == 1
    no_secrets_logged.append(caught.value.reason)


async def test_a_dropped_connection_and_a_closed_port_are_unavailable(
    openai_fake: FakeOpenAI, no_secrets_logged: list[str]
) -> None:
    openai_fake.faults.append(openai_api.Fault(drop=True))
    p = openai(openai_fake)
    with pytest.raises(ProviderUnavailable):
        await run(p, make_call(provider=p))
    await openai_fake.close()
    with pytest.raises(ProviderUnavailable) as caught:
        await run(p, make_call(provider=p))
    no_secrets_logged.append(caught.value.message)


async def test_a_wrong_key_is_for_the_admin_and_never_echoed(
    openai_fake: FakeOpenAI, no_secrets_logged: list[str]
) -> None:
    openai_fake.api_key = "sk-test-the-right-key-0000"
    p = openai(openai_fake, api_key=openai_api.API_KEY)
    with pytest.raises(ProviderQuota) as caught:
        await run(p, make_call(provider=p))
    # The fake echoes a masked key, as OpenAI does; even that is redacted.
    assert "Incorrect API key provided: ***" in caught.value.message
    assert openai_api.API_KEY[:6] not in caught.value.message
    no_secrets_logged.append(str(caught.value))


async def test_a_retired_model_is_a_bad_request_naming_it(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake, model="dall-e-3")
    with pytest.raises(ProviderBadRequest, match="dall-e-3. has been deprecated"):
        await run(p, make_call(provider=p))


async def test_the_circuit_opens_after_repeated_failures_and_skips_the_network(openai_fake: FakeOpenAI) -> None:
    clock = FakeClock()
    p = openai(openai_fake, clock, circuit_failures=2, circuit_cooldown_seconds=30)
    openai_fake.always = openai_api.server_error(503)
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            await run(p, make_call(provider=p))
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await run(p, make_call(provider=p))
    assert len(openai_fake.received) == 2
    openai_fake.always = None
    await clock.advance(31)
    await run(p, make_call(provider=p))  # the half-open trial succeeds and closes it
    await run(p, make_call(provider=p))
    assert len(openai_fake.received) == 4


async def test_capabilities_are_checked_before_any_call(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake, max_images_per_call=2)
    with pytest.raises(ProviderBadRequest, match="at most 2 images"):
        await run(p, make_call(count=3, provider=p))
    with pytest.raises(ProviderBadRequest, match="negative prompt"):
        await run(p, make_call(provider=p, negative_prompt="blur"))
    with pytest.raises(ProviderBadRequest, match="upscaling"):
        await run(p, make_call(provider=p, init=png(8, 8, "s"), kind=JobKind.UPSCALE, source_job_id="j",
                               source_image_index=0))
    assert openai_fake.received == []
    caps = p.capabilities
    assert (caps.negative_prompt, caps.fold_negative_prompt) == (False, True)
    assert (caps.seed, caps.deterministic) == (False, False)


def test_model_and_key_are_required_and_unknown_keys_rejected() -> None:
    with pytest.raises(ConfigError, match=r"providers\.o\.model"):
        provider("o", {"type": "openai", "api_key": "k"})
    with pytest.raises(ConfigError, match=r"providers\.o\.api_key"):
        provider("o", {"type": "openai", "model": "m"})
    with pytest.raises(ConfigError, match=r"providers\.o\.sizez: unknown key"):
        provider("o", {"type": "openai", "model": "m", "api_key": "k", "sizez": []})
    with pytest.raises(ConfigError, match=r"providers\.o\.prices\.per_image"):
        provider("o", {"type": "openai", "model": "m", "api_key": "k", "prices": {"per_image": {"ultra": 1}}})


async def test_health_asks_for_the_model_without_a_paid_call(openai_fake: FakeOpenAI) -> None:
    assert (await openai(openai_fake).health()).ok
    retired = await openai(openai_fake, model="dall-e-3").health()
    assert not retired.ok and "dall-e-3" in retired.detail
    assert [r.method for r in openai_fake.received] == ["GET", "GET"]
