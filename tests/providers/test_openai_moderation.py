"""OpenAI's moderation endpoint as a provider check, through the real SDK against the fake."""

from __future__ import annotations

import pytest

from bot.errors import ProviderUnavailable
from bot.generation import SupportsModeration
from tests.fakes import openai_api
from tests.fakes.openai_api import FakeOpenAI
from tests.providers.test_openai import openai


async def test_a_prompt_is_screened_and_the_categories_that_fired_come_back(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake)
    assert isinstance(p, SupportsModeration)
    flagged = await p.moderate("I will kill them")
    assert flagged.flagged and flagged.categories == ("harassment/threatening", "violence")
    clean = await p.moderate("a lighthouse at dusk")
    assert not clean.flagged and clean.categories == ()
    sent = [r.json for r in openai_fake.received if r.path == "/v1/moderations"]
    assert sent == [{"model": "omni-moderation-latest", "input": "I will kill them"},
                    {"model": "omni-moderation-latest", "input": "a lighthouse at dusk"}]
    assert openai_fake.violations == []


async def test_a_failing_check_raises_a_provider_error(openai_fake: FakeOpenAI) -> None:
    p = openai(openai_fake)
    openai_fake.faults.append(openai_api.server_error(503))
    with pytest.raises(ProviderUnavailable):
        await p.moderate("a lighthouse")
