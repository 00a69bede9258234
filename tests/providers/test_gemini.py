"""The Gemini provider against the fake generateContent API, through the real google-genai SDK."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.errors import (
    ProviderBadRequest,
    ProviderQuota,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
)
from bot.request import AspectRatio, JobKind
from providers.base import BaseProvider
from tests.fakes import gemini_api
from tests.fakes.gemini_api import FakeGemini
from tests.fakes.provider_http import Fault, png
from tests.providers.conftest import make_call, provider, run

PRICES = {"per_image": {"default": 0.039}, "input_text_per_million": 0.3, "output_image_per_million": 30.0}


def gemini(fake: FakeGemini, clock: FakeClock | None = None, **settings: Any) -> BaseProvider:
    section = {"type": "gemini", "api_key": fake.api_key, "base_url": f"http://127.0.0.1:{fake.port}",
               "model": "gemini-2.5-flash-image", "prices": PRICES, **settings}
    return provider("gemini", section, clock)


async def test_generate_content_asks_for_an_image_in_the_ratio(gemini_fake: FakeGemini) -> None:
    p = gemini(gemini_fake, image_size="2K")
    [image] = await run(p, make_call("a red fox", provider=p, aspect_ratio="16:9"))
    got = gemini_fake.received[-1]
    assert got.path == "/v1beta/models/gemini-2.5-flash-image:generateContent"
    assert got.headers["x-goog-api-key"] == gemini_api.API_KEY
    assert got.json["contents"] == [{"parts": [{"text": "a red fox"}], "role": "user"}]
    config = got.json["generationConfig"]
    assert config["responseModalities"] == ["TEXT", "IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert image.mime == "image/png" and abs(image.width / image.height - 16 / 9) < 0.02
    assert image.info["text"] == "Here is your picture." and gemini_fake.violations == []


async def test_cost_comes_from_usage_metadata(gemini_fake: FakeGemini) -> None:
    p = gemini(gemini_fake)
    call = make_call("a red fox", provider=p)
    [image] = await run(p, call)
    assert image.cost_usd == pytest.approx((3 * 0.3 + 1290 * 30.0) / 1e6)
    assert p.estimate_cost(call) == pytest.approx(0.039)


async def test_a_variation_sends_the_source_as_inline_data(gemini_fake: FakeGemini) -> None:
    p = gemini(gemini_fake)
    source = png(32, 32, "source")
    call = make_call("same fox, at night", provider=p, init=source, kind=JobKind.VARIATION,
                     source_job_id="j", source_image_index=0)
    await run(p, call)
    parts = gemini_fake.received[-1].json["contents"][0]["parts"]
    assert parts[0] == {"text": "same fox, at night"}
    assert "image/png" in (parts[1]["inlineData"].get("mimeType"), parts[1]["inlineData"].get("mime_type"))
    data = parts[1]["inlineData"]["data"]  # the SDK sends URL-safe base64
    assert base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)) == source


async def test_one_image_per_call_and_only_listed_ratios(gemini_fake: FakeGemini) -> None:
    p = gemini(gemini_fake)
    caps = p.capabilities
    assert caps.max_images_per_call == 1 and not caps.live_previews and not caps.deterministic
    assert caps.supports_ratio(AspectRatio.parse("21:9")) and not caps.supports_ratio(AspectRatio.parse("2:1"))
    with pytest.raises(ProviderBadRequest, match="aspect ratio 2:1"):
        await run(p, make_call(provider=p, aspect_ratio="2:1"))
    assert gemini_fake.received == []


@pytest.mark.parametrize(("fault", "reason"), [
    (gemini_api.safety_block(), "IMAGE_SAFETY"),
    (gemini_api.prompt_blocked(), "PROHIBITED_CONTENT"),
    (gemini_api.text_only("I can't draw real people."), "I can't draw real people."),
])
async def test_refusals_come_with_http_200_and_keep_their_reason(
    gemini_fake: FakeGemini, no_secrets_logged: list[str], fault: Fault, reason: str
) -> None:
    gemini_fake.faults.append(fault)
    p = gemini(gemini_fake)
    with pytest.raises(ProviderRefused) as caught:
        await run(p, make_call(provider=p))
    assert reason in caught.value.reason
    no_secrets_logged.append(caught.value.reason)


async def test_resource_exhausted_takes_its_wait_from_retry_info(
    gemini_fake: FakeGemini, no_secrets_logged: list[str]
) -> None:
    gemini_fake.faults.append(gemini_api.resource_exhausted("39s"))
    p = gemini(gemini_fake)
    with pytest.raises(ProviderRateLimited) as caught:
        await run(p, make_call(provider=p))
    assert caught.value.retry_after == 39 and len(gemini_fake.received) == 1
    no_secrets_logged.append(caught.value.message)


@pytest.mark.parametrize("status", [500, 503, 504])
async def test_server_errors_are_unavailable(
    gemini_fake: FakeGemini, no_secrets_logged: list[str], status: int
) -> None:
    gemini_fake.faults.append(gemini_api.server_error(status))
    p = gemini(gemini_fake)
    with pytest.raises(ProviderUnavailable) as caught:
        await run(p, make_call(provider=p))
    no_secrets_logged.append(caught.value.message)


async def test_timeouts_malformed_bodies_and_closed_ports(
    gemini_fake: FakeGemini, no_secrets_logged: list[str]
) -> None:
    p = gemini(gemini_fake, timeout_seconds=0.3)
    gemini_fake.faults.append(Fault(delay=3.0, status=200, body={}))
    with pytest.raises(ProviderTimeout):
        await run(p, make_call(provider=p))
    gemini_fake.faults.append(gemini_api.malformed())
    with pytest.raises(ProviderUnavailable, match="malformed"):
        await run(p, make_call(provider=p))
    await gemini_fake.close()
    with pytest.raises(ProviderUnavailable) as caught:
        await run(p, make_call(provider=p))
    no_secrets_logged.append(caught.value.message)


async def test_a_rejected_key_is_for_the_admin(gemini_fake: FakeGemini, no_secrets_logged: list[str]) -> None:
    gemini_fake.api_key = "AIzaTheRightKeyIsAnotherOne"
    p = gemini(gemini_fake, api_key=gemini_api.API_KEY)
    with pytest.raises(ProviderQuota, match="API key not valid") as caught:
        await run(p, make_call(provider=p))
    no_secrets_logged.append(caught.value.message)


async def test_an_imagen_model_is_a_bad_request_since_imagen_is_retired(gemini_fake: FakeGemini) -> None:
    p = gemini(gemini_fake, model="imagen-4.0-generate-001")
    with pytest.raises(ProviderBadRequest, match="not found"):
        await run(p, make_call(provider=p))
