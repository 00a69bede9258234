"""A provider's HTTP failure, classified into the bot's ``ProviderError`` tree in one place.

Every cloud provider turns its SDK's exception into a status, the provider's own error code
and type, its message and any Retry-After, and calls :func:`classify`. The provider's code
wins over the status: OpenAI refuses content with a 400 and runs out of quota with a 429, and
neither is a bad request or a rate limit. Messages are redacted of anything that looks like an
API key, since some providers echo a masked key back ("Incorrect API key provided: sk-ab***").
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping

from bot.errors import (
    ProviderBadRequest,
    ProviderError,
    ProviderQuota,
    ProviderRateLimited,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
)

#: Error codes and types that mean "the provider refused this content"; never retried or re-routed.
REFUSALS = frozenset({
    "moderation_blocked", "content_policy_violation", "content_filter",
})
#: Error codes and types that mean "billing or quota is used up": an admin has to act.
QUOTA = frozenset({
    "insufficient_quota", "billing_hard_limit_reached", "credit_balance_exhausted",
    "project_spend_limit_exceeded", "billing_not_active",
})
#: HTTP statuses worth trying again (or elsewhere) later.
UNAVAILABLE = frozenset({500, 502, 503, 504, 520, 522, 524, 529})
#: For providers that refuse content with a bare 400 and say so only in words (xAI).
_REFUSAL_TEXT = re.compile(r"content.?polic|safety system|moderation|prohibited content", re.IGNORECASE)
_MAX_MESSAGE = 300
_KEYLIKE = re.compile(r"\b(?:sk|xai)-[\w\-*.]{4,}|\bAIza[\w\-]{8,}")


def classify(
    provider: str,
    status: int,
    message: str,
    *,
    code: str | None = None,
    kind: str | None = None,
    retry_after: float | None = None,
    secret: str | None = None,
) -> ProviderError:
    """The ``ProviderError`` for an HTTP failure (``status`` 0: no HTTP answer at all)."""
    text = redact(message, secret) or f"HTTP {status}"
    markers = {m.lower() for m in (code, kind) if m}
    if markers & REFUSALS or (status in (400, 403) and _REFUSAL_TEXT.search(text)):
        return ProviderRefused(text, provider=provider, reason=text)
    if markers & QUOTA or status == 402:
        return ProviderQuota(f"quota or billing: {text}", provider=provider)
    if status in (401, 403):
        # A rejected key is the admin's to fix, like an empty balance; another provider may serve.
        return ProviderQuota(f"the API key was not accepted (HTTP {status}): {text}", provider=provider)
    if status == 429:
        return ProviderRateLimited(f"rate limited: {text}", provider=provider, retry_after=retry_after)
    if status == 408:
        return ProviderTimeout(f"timed out: {text}", provider=provider)
    if status == 0 or status in UNAVAILABLE or status >= 500:
        return ProviderUnavailable(f"unavailable: {text}", provider=provider, retry_after=retry_after)
    return ProviderBadRequest(text, provider=provider)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` shortened, with the key and anything key-shaped replaced by ``***``."""
    if secret:
        text = text.replace(secret, "***")
    text = _KEYLIKE.sub("***", " ".join(text.split()))
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        if "retry-after-ms" in lowered:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
        value = lowered.get("retry-after")
        if value is None:
            return None
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value or "")
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def duration_seconds(text: str) -> float | None:
    """Google's ``retryDelay`` ("39s", "1.5s") in seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", text)
    return float(match.group(1)) if match else None
