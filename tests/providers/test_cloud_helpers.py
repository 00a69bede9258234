"""The small shared pieces: error classification, Retry-After, prices, the circuit breaker."""

from __future__ import annotations

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
from providers.circuit import CircuitBreaker
from providers.cloud import decode_base64
from providers.http_errors import classify, duration_seconds, redact, retry_after
from providers.pricing import Prices, TokenUsage


@pytest.mark.parametrize(("status", "code", "kind", "expected"), [
    (400, "moderation_blocked", "image_generation_user_error", ProviderRefused),
    (400, "content_policy_violation", "invalid_request_error", ProviderRefused),
    (429, "insufficient_quota", "insufficient_quota", ProviderQuota),
    (429, "rate_limit_exceeded", "requests", ProviderRateLimited),
    (402, None, None, ProviderQuota),
    (401, "invalid_api_key", None, ProviderQuota),
    (408, None, None, ProviderTimeout),
    (500, None, "server_error", ProviderUnavailable),
    (503, None, None, ProviderUnavailable),
    (0, None, None, ProviderUnavailable),
    (400, "invalid_value", None, ProviderBadRequest),
    (404, "model_not_found", None, ProviderBadRequest),
])
def test_the_providers_code_wins_over_the_status(
    status: int, code: str | None, kind: str | None, expected: type[Exception]
) -> None:
    assert type(classify("p", status, "why", code=code, kind=kind)) is expected


def test_keys_and_key_shaped_text_are_redacted() -> None:
    assert redact("bad key sk-abc********wxyz given", None) == "bad key *** given"
    assert redact("key=mysecretvalue", "mysecretvalue") == "key=***"
    assert redact("AIzaSyD-abcdefghijk0123 rejected") == "*** rejected"
    assert len(redact("x" * 1000)) == 300


def test_retry_after_in_ms_seconds_or_a_date() -> None:
    assert retry_after({"retry-after-ms": "1500"}, 0) == 1.5
    assert retry_after({"Retry-After": "7"}, 0) == 7
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, 1445412480) == 10
    assert retry_after({}, 0) is None and retry_after({"retry-after": "soon"}, 0) is None
    assert duration_seconds("39s") == 39 and duration_seconds("1.5s") == 1.5 and duration_seconds("x") is None


def test_prices_estimate_high_and_cost_from_tokens() -> None:
    prices = Prices(per_image={"low": 0.01, "high": 0.2}, non_square_factor=1.5, output_image_per_million=40)
    assert prices.per_image_usd("low") == 0.01
    assert prices.per_image_usd(None) == 0.2  # no "default": the dearest, so budgets err high
    assert prices.per_image_usd("high", square=False) == pytest.approx(0.3)
    usage = TokenUsage(output_image=1000) + TokenUsage(output_image=500, input_text=3)
    assert prices.actual_usd(usage, images=2, quality="low", square=True) == pytest.approx(1500 * 40 / 1e6)
    assert Prices(per_image={"default": 0.04}).actual_usd(usage, images=2, quality=None, square=True) == 0.08
    assert Prices().actual_usd(None, images=3, quality=None, square=True) == 0.0


async def test_the_circuit_opens_fails_fast_and_lets_one_trial_through() -> None:
    clock = FakeClock()
    circuit = CircuitBreaker(threshold=2, cooldown=10, clock=clock)
    circuit.failed()
    circuit.check("p")
    circuit.failed()
    with pytest.raises(ProviderUnavailable, match="circuit open") as caught:
        circuit.check("p")
    assert caught.value.retry_after == 10
    await clock.advance(10)
    circuit.check("p")  # the trial
    with pytest.raises(ProviderUnavailable):
        circuit.check("p")  # only one trial at a time
    circuit.failed()
    assert circuit.state == "open"
    await clock.advance(10)
    circuit.check("p")
    circuit.succeeded()
    assert circuit.state == "closed"


def test_base64_and_data_urls_decode() -> None:
    assert decode_base64("aGk=") == b"hi" == decode_base64("data:image/png;base64,aGk=")
    with pytest.raises(ValueError):
        decode_base64("not base64!")
