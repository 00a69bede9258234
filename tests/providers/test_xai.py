"""The xAI provider against the OpenAI-compatible fake in its xAI flavour, through the real openai SDK."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import ProviderBadRequest, ProviderRateLimited, ProviderRefused, ProviderUnavailable
from bot.request import AspectRatio
from providers.base import BaseProvider
from tests.fakes import openai_api
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.provider_http import Fault
from tests.providers.conftest import make_call, provider, run


def xai(fake: FakeOpenAI, **settings: Any) -> BaseProvider:
    section = {"type": "xai", "api_key": fake.api_key, "base_url": f"http://127.0.0.1:{fake.port}/v1",
               "model": "grok-imagine-image", "prices": {"per_image": {"default": 0.07}}, **settings}
    return provider("xai", section)


async def test_aspect_ratio_and_resolution_go_in_xais_own_fields(xai_fake: FakeOpenAI) -> None:
    p = xai(xai_fake, resolution="2k")
    made = await run(p, make_call("a comet", count=2, provider=p, aspect_ratio="9:16", quality="high"))
    sent = xai_fake.received[-1].json
    assert sent == {"model": "grok-imagine-image", "prompt": "a comet", "n": 2, "response_format": "b64_json",
                    "aspect_ratio": "9:16", "resolution": "2k", "quality": "high"}
    assert "size" not in sent and xai_fake.violations == []
    # b64_json came as a data URL; it is stripped and the bytes sniffed
    assert [(i.mime, i.width < i.height) for i in made] == [("image/png", True)] * 2


async def test_cost_from_ticks_when_configured_else_the_per_image_price(xai_fake: FakeOpenAI) -> None:
    ticked = xai(xai_fake, usd_per_cost_tick=1e-10)
    [image] = await run(ticked, make_call(provider=ticked))
    assert image.cost_usd == pytest.approx(openai_api.XAI_TICKS * 1e-10)
    plain = xai(xai_fake)
    [image] = await run(plain, make_call(provider=plain))
    assert image.cost_usd == pytest.approx(0.07)


async def test_only_xais_ratios_are_declared(xai_fake: FakeOpenAI) -> None:
    p = xai(xai_fake)
    caps = p.capabilities
    assert caps.supports_ratio(AspectRatio.parse("2:1")) and not caps.supports_ratio(AspectRatio.parse("5:4"))
    assert not caps.image_input and not caps.live_previews
    with pytest.raises(ProviderBadRequest):
        await run(p, make_call(provider=p, aspect_ratio="5:4"))
    assert xai_fake.received == []


async def test_faults(xai_fake: FakeOpenAI, no_secrets_logged: list[str]) -> None:
    p = xai(xai_fake)
    xai_fake.faults.append(openai_api.rate_limited(retry_after=3))
    with pytest.raises(ProviderRateLimited) as limited:
        await run(p, make_call(provider=p))
    assert limited.value.retry_after == 3
    # xAI refuses content with a bare 400 that says so only in words
    xai_fake.faults.append(Fault(status=400, body=openai_api.error_body(
        "Generated image rejected by content moderation.", kind="invalid_request_error", code=None)))
    with pytest.raises(ProviderRefused) as refused:
        await run(p, make_call(provider=p))
    xai_fake.faults.append(openai_api.server_error(502))
    with pytest.raises(ProviderUnavailable):
        await run(p, make_call(provider=p))
    xai_fake.faults.append(Fault(status=200, body={"data": [], "block_reason": "explicit content"}))
    with pytest.raises(ProviderRefused, match="explicit content"):
        await run(p, make_call(provider=p))
    no_secrets_logged += [limited.value.message, refused.value.reason]
