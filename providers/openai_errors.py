"""Translating the openai SDK's exceptions (OpenAI, xAI and OpenRouter all speak through it).

The SDK is built with ``max_retries=0``: the core's runner decides what is retried, with its
own backoff and cap, so nothing re-sends a paid request behind its back.
"""

from __future__ import annotations

from typing import Any

import openai
from openai import AsyncOpenAI

from bot.clock import Clock
from bot.errors import ProviderError, ProviderTimeout, ProviderUnavailable
from providers.http_errors import classify, retry_after


def make_client(
    *, api_key: str, base_url: str | None, timeout: float, headers: dict[str, str] | None = None
) -> AsyncOpenAI:
    """An SDK client with the SDK's own retries off (the runner retries)."""
    return AsyncOpenAI(
        api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0, default_headers=headers
    )


def translate(exc: Exception, *, provider: str, secret: str, clock: Clock) -> ProviderError:
    """The ``ProviderError`` for an exception the openai SDK raised (or a malformed answer)."""
    if isinstance(exc, openai.APITimeoutError):
        return ProviderTimeout("no answer in time", provider=provider)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderUnavailable("could not connect", provider=provider)
    if isinstance(exc, openai.APIStatusError):
        message, code, kind = error_fields(exc.body)
        wait = retry_after(dict(exc.response.headers), clock.now())
        return classify(provider, exc.status_code, message or f"HTTP {exc.status_code}",
                        code=code or exc.code, kind=kind or exc.type, retry_after=wait, secret=secret)
    if isinstance(exc, openai.APIError):  # an error event in the middle of a stream
        message, code, kind = error_fields(exc.body)
        return classify(provider, 0, message or "the stream failed", code=code, kind=kind, secret=secret)
    return ProviderUnavailable("malformed answer from the provider", provider=provider)


def error_fields(body: Any) -> tuple[str, str | None, str | None]:
    """(message, code, type) from an error body, whether or not it is wrapped in ``{"error": ...}``."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        body = body["error"]
    if not isinstance(body, dict):
        return (str(body) if body else ""), None, None
    code = body.get("code")
    kind = body.get("type")
    return (
        str(body.get("message") or ""),
        str(code) if code is not None else None,
        str(kind) if kind is not None else None,
    )


#: What ``translate`` handles: the SDK's errors and the decoding errors of a malformed answer.
SDK_ERRORS: tuple[type[Exception], ...] = (openai.OpenAIError, ValueError)
