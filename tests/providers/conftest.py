"""Fixtures for the cloud providers: each fake server started on 127.0.0.1, and providers pointed at them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.generation import GeneratedImage, ProgressUpdate, ProviderCall
from bot.request import AspectRatio, GenerationRequest
from providers.base import BaseProvider
from providers.registry import build_providers
from tests.fakes import gemini_api, openai_api, openrouter_api
from tests.fakes.gemini_api import FakeGemini
from tests.fakes.openai_api import FakeOpenAI
from tests.fakes.openrouter_api import FakeOpenRouter

#: Every key the fakes accept; no log line or error message may ever contain one.
SECRETS = (openai_api.API_KEY, gemini_api.API_KEY, openrouter_api.API_KEY)


class Progress:
    """Records every progress update a provider reports."""

    def __init__(self) -> None:
        self.updates: list[ProgressUpdate] = []

    async def __call__(self, update: ProgressUpdate) -> None:
        self.updates.append(update)


def make_call(prompt: str = "a lighthouse at dusk", *, count: int = 1, provider: BaseProvider | None = None,
              init: bytes | None = None, **request: Any) -> ProviderCall:
    """A ``ProviderCall`` sized the way the runner would size it for ``provider``."""
    if "aspect_ratio" in request and isinstance(request["aspect_ratio"], str):
        request["aspect_ratio"] = AspectRatio.parse(request["aspect_ratio"])
    req = GenerationRequest(prompt=prompt, count=max(count, 1), **request)
    width, height = provider.size_for(req.aspect_ratio) if provider else (1024, 1024)
    return ProviderCall(request=req, count=count, seed=7, width=width, height=height, init_image=init)


async def run(provider: BaseProvider, call: ProviderCall, progress: Progress | None = None) -> list[GeneratedImage]:
    return await asyncio.wait_for(provider.generate(call, progress or Progress()), 20)


#: Providers built by the test now running; the autouse fixture below closes them.
_built: list[BaseProvider] = []


def provider(name: str, section: dict[str, Any], clock: FakeClock | None = None) -> BaseProvider:
    built = build_providers({name: section}, clock=clock or FakeClock())[name]
    _built.append(built)
    return built


@pytest.fixture(autouse=True)
async def _close_providers() -> AsyncIterator[None]:
    yield
    while _built:
        await _built.pop().aclose()


@pytest.fixture
async def openai_fake() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def xai_fake() -> AsyncIterator[FakeOpenAI]:
    fake = FakeOpenAI(flavour="xai")
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def gemini_fake() -> AsyncIterator[FakeGemini]:
    fake = FakeGemini()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
async def openrouter_fake() -> AsyncIterator[FakeOpenRouter]:
    fake = FakeOpenRouter()
    await fake.start()
    yield fake
    await fake.close()


@pytest.fixture
def no_secrets_logged(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Capture every log record (DEBUG and up, SDKs included); fail if any shows an API key.

    Yields a list the test appends its error messages to; they are checked too.
    """
    messages: list[str] = []
    with caplog.at_level(logging.DEBUG):
        yield messages
    seen = [r.getMessage() for r in caplog.records] + [caplog.text] + messages
    for secret in SECRETS:
        for text in seen:
            assert secret not in text, "an API key leaked into a log line or an error message"
            assert secret[:12] not in text, "part of an API key leaked into a log line or an error message"
