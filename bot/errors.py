"""The one exception tree of imaginebot.

::

    ImaginebotError
    ├── ConfigError                  bad or missing configuration, raised at start
    ├── UserFacingError              shown to the user in chat, friendly text from bot.messages
    │   ├── InvalidRequest           a malformed flag, an unknown style, a bad value
    │   ├── BadImage                 an attachment that is not an acceptable image
    │   ├── RateLimited              too many requests; carries ``retry_at``
    │   ├── QuotaExceeded            a daily cap or cost budget is used up; carries ``retry_at``
    │   ├── QueueFull                too many queued or running jobs
    │   ├── StorageUnavailable       the disk is full, read-only or failing: nothing new can be saved
    │   ├── NotAllowed               ownership or admin rules forbid the action
    │   ├── NotFound                 no such job, image, template ...
    │   └── ContentRejected          a provider or a moderation rule refused the prompt
    └── ProviderError                raised by providers, classified for retry and fallback
        ├── ProviderUnavailable      5xx, connection errors, open circuit (fallback may serve)
        │   └── ProviderTimeout      the call took too long
        ├── ProviderRateLimited      429; retryable after ``retry_after`` seconds
        ├── ProviderRefused          the provider refused the content (never retried or re-routed)
        ├── ProviderQuota            billing or quota exhausted at the provider (tell the admin)
        └── ProviderBadRequest       the provider rejected our parameters

Foreign exceptions are translated where they enter (``raise ProviderUnavailable(...) from exc``).
No message here ever contains a secret: providers build their messages from status codes and
the provider's own error text, never from request headers.
"""

from __future__ import annotations


class ImaginebotError(Exception):
    """Base of every error imaginebot raises on purpose."""


class ConfigError(ImaginebotError):
    """The configuration is invalid; the message names the key path and the fix."""


class UserFacingError(ImaginebotError):
    """An error whose message is meant for the person who asked; safe to show in chat."""

    #: Seconds since the epoch at which trying again can succeed, when known.
    retry_at: float | None = None

    def __init__(self, message: str, *, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_at = retry_at


class InvalidRequest(UserFacingError):
    """A malformed flag, an unknown style or provider, a value out of range."""


class BadImage(UserFacingError):
    """A supplied image is too large, not an image, or of a format we do not accept."""


class RateLimited(UserFacingError):
    """The user sends requests faster than their rate allows."""


class QuotaExceeded(UserFacingError):
    """A daily image cap or a cost budget is used up."""


class QueueFull(UserFacingError):
    """The user (or the whole bot) has too many jobs waiting or running."""


class StorageUnavailable(UserFacingError):
    """The disk under storage is full, read-only or failing; ``reason`` says which, for the log.

    Raised where storage errors enter the core (see ``storage/faults.py``). New work is refused
    with this; jobs already accepted wait and try again, since nothing is wrong with them.
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class NotAllowed(UserFacingError):
    """Ownership or admin rules forbid the action."""


class NotFound(UserFacingError):
    """The job, image, style or template does not exist (or is not visible here)."""


class ContentRejected(UserFacingError):
    """A moderation rule or the provider refused the prompt; ``reason`` says why."""

    def __init__(self, message: str, *, reason: str = "", provider: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.provider = provider


class ProviderError(ImaginebotError):
    """A provider call failed. ``retryable`` says whether the same call may be tried again."""

    retryable: bool = False
    #: Whether a fallback provider may take over the job.
    falls_back: bool = False

    def __init__(self, message: str, *, provider: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.retry_after = retry_after


class ProviderUnavailable(ProviderError):
    """The provider is down or unreachable (5xx, connection refused, circuit open)."""

    retryable = True
    falls_back = True


class ProviderTimeout(ProviderUnavailable):
    """The provider did not answer in time."""


class ProviderRateLimited(ProviderError):
    """The provider answered 429; try again after ``retry_after`` seconds."""

    retryable = True
    falls_back = True


class ProviderRefused(ProviderError):
    """The provider refused the content; the reason is shown to the user, nothing is retried."""

    def __init__(self, message: str, *, provider: str = "", reason: str = "") -> None:
        super().__init__(message, provider=provider)
        self.reason = reason


class ProviderQuota(ProviderError):
    """Billing or quota exhausted at the provider; an admin has to act."""

    falls_back = True


class ProviderBadRequest(ProviderError):
    """The provider rejected our parameters (a bug or an unsupported option)."""
