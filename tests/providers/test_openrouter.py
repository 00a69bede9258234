"""The OpenRouter provider against the fake chat-completions API, through the real openai SDK."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from bot.errors import ProviderQuota, ProviderRateLimited, ProviderRefused, ProviderUnavailable
from bot.request import JobKind
from providers.base import BaseProvider
from tests.fakes import openrouter_api
from tests.fakes.openrouter_api import FakeOpenRouter
from tests.fakes.provider_http import png
from tests.providers.conftest import make_call, provider, run


def openrouter(fake: FakeOpenRouter, **settings: Any) -> BaseProvider:
    section = {"type": "openrouter", "api_key": fake.api_key, "base_url": f"http://127.0.0.1:{fake.port}/api/v1",
               "model": "google/gemini-2.5-flash-image",
               "prices": {"per_image": {"default": 0.04}, "output_image_per_million": 30.0}, **settings}
    return provider("openrouter", section)


async def test_a_chat_completion_with_image_output(openrouter_fake: FakeOpenRouter) -> None:
    p = openrouter(openrouter_fake, referer="https://bot.example", title="imaginebot", image_size="2K")
    [image] = await run(p, make_call("a red fox", provider=p, aspect_ratio="3:2"))
    got = openrouter_fake.received[-1]
    assert got.json["modalities"] == ["image", "text"]
    assert got.json["image_config"] == {"aspect_ratio": "3:2", "image_size": "2K"}
    assert got.json["messages"] == [{"role": "user", "content": [{"type": "text", "text": "a red fox"}]}]
    assert got.headers["http-referer"] == "https://bot.example" and got.headers["x-title"] == "imaginebot"
    assert image.mime == "image/png" and image.width > image.height
    assert image.cost_usd == pytest.approx(1300 * 30.0 / 1e6) and openrouter_fake.violations == []


async def test_a_variation_sends_the_source_as_a_data_url(openrouter_fake: FakeOpenRouter) -> None:
    p = openrouter(openrouter_fake)
    source = png(16, 16, "src")
    await run(p, make_call("again", provider=p, init=source, kind=JobKind.VARIATION, source_job_id="j",
                           source_image_index=0))
    part = openrouter_fake.received[-1].json["messages"][0]["content"][1]
    assert part["type"] == "image_url"
    assert base64.b64decode(part["image_url"]["url"].removeprefix("data:image/png;base64,")) == source


async def test_moderation_is_a_refusal_with_the_reasons(
    openrouter_fake: FakeOpenRouter, no_secrets_logged: list[str]
) -> None:
    openrouter_fake.faults.append(openrouter_api.moderation(("violence", "gore")))
    p = openrouter(openrouter_fake)
    with pytest.raises(ProviderRefused) as caught:
        await run(p, make_call(provider=p))
    assert caught.value.reason == "violence, gore"
    no_secrets_logged.append(caught.value.reason)


async def test_errors_by_status_and_inside_a_200(openrouter_fake: FakeOpenRouter, no_secrets_logged: list[str]) -> None:
    p = openrouter(openrouter_fake)
    openrouter_fake.faults.append(openrouter_api.no_credits())
    with pytest.raises(ProviderQuota) as quota:
        await run(p, make_call(provider=p))
    openrouter_fake.faults.append(openrouter_api.rate_limited(retry_after=4))
    with pytest.raises(ProviderRateLimited) as limited:
        await run(p, make_call(provider=p))
    assert limited.value.retry_after == 4
    for fault in (openrouter_api.upstream_down(), openrouter_api.failed_midway(), openrouter_api.malformed()):
        openrouter_fake.faults.append(fault)
        with pytest.raises(ProviderUnavailable):
            await run(p, make_call(provider=p))
    no_secrets_logged += [quota.value.message, limited.value.message]
