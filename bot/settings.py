"""Saved defaults per user, channel and server, as set with ``/settings``.

Each scope stores the same small, closed set of keys; a more specific scope wins
(user over channel over server over config).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.config import DefaultsConfig, LimitsConfig
from bot.errors import InvalidRequest
from bot.messages import unknown_setting
from bot.moderation import patterns_problem, terms_problem
from bot.request import MAX_COUNT, AspectRatio, Quality

Scope = Literal["user", "channel", "server"]
SCOPES: tuple[Scope, ...] = ("user", "channel", "server")


class ScopeSettings(BaseModel):
    """Defaults a user, channel or server may save; the policy keys are for servers only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    aspect: str | None = None
    quality: Quality | None = None
    # --- server policy (admins) ---
    #: Channel ids where /imagine may be used; unset or empty: everywhere.
    allowed_channels: list[str] | None = None
    #: Words (or phrases) a prompt may not contain, matched as whole words, any case.
    blocked_words: list[str] | None = None
    #: Regular expressions (a safe subset, see bot/moderation.py) a prompt may not match, any case.
    blocked_patterns: list[str] | None = None
    #: Words or phrases that no rule may block (they win over words, patterns and NSFW terms).
    allowed_words: list[str] | None = None
    #: Terms that count as NSFW, added to the built-in list.
    nsfw_words: list[str] | None = None
    #: "provider": also ask the job's provider's moderation check (when it has one) before drawing.
    moderation: Literal["off", "provider"] | None = None
    # --- channel (or server-wide) policy (admins) ---
    #: NSFW prompts: "allow", "nsfw_channels" (Discord's age-restricted channels; on Slack and the
    #: web, channels whose own setting is "allow") or "block". The channel's value wins.
    nsfw: Literal["allow", "nsfw_channels", "block"] | None = None
    #: This server's own limits, replacing [limits] values of the same name.
    per_user_per_minute: float | None = Field(default=None, gt=0)
    daily_images_per_user: int | None = Field(default=None, ge=0)
    daily_images_per_server: int | None = Field(default=None, ge=0)
    daily_budget_usd_per_server: float | None = Field(default=None, ge=0)

    @field_validator("allowed_channels", "blocked_words", "allowed_words", "nsfw_words", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        # Chat commands give "a, b, c"; storage and config give lists.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("blocked_patterns", mode="before")
    @classmethod
    def _space_list(cls, value: object) -> object:
        # Patterns hold commas ({1,3}), so chat commands separate them with spaces (\s is a space).
        return value.split() if isinstance(value, str) else value

    @field_validator("aspect")
    @classmethod
    def _ratio(cls, value: str | None) -> str | None:
        return None if value is None else str(AspectRatio.parse(value))


SETTING_KEYS = sorted(ScopeSettings.model_fields)
SERVER_ONLY_KEYS = frozenset({
    "allowed_channels", "blocked_words", "blocked_patterns", "allowed_words", "nsfw_words", "moderation",
    "per_user_per_minute", "daily_images_per_user", "daily_images_per_server", "daily_budget_usd_per_server",
})
#: Policy keys a channel may override (admins); never a user's.
CHANNEL_POLICY_KEYS = frozenset({"nsfw"})
#: Changes to these keys go to the moderation audit log.
MODERATION_KEYS = frozenset({"blocked_words", "blocked_patterns", "allowed_words", "nsfw_words", "moderation", "nsfw"})
LIMIT_KEYS = ("per_user_per_minute", "daily_images_per_user", "daily_images_per_server", "daily_budget_usd_per_server")


def parse_settings(values: Mapping[str, Any], *, providers: Collection[str], scope: str = "user") -> ScopeSettings:
    """Validate user-supplied settings; errors are friendly :class:`InvalidRequest`."""
    for key in values:
        if key not in ScopeSettings.model_fields:
            raise InvalidRequest(unknown_setting(key, SETTING_KEYS))
        if scope != "server" and key in SERVER_ONLY_KEYS and values[key] not in (None, "", "default"):
            raise InvalidRequest(f"'{key}' is a server setting: use the server scope (admins only).")
        if scope == "user" and key in CHANNEL_POLICY_KEYS and values[key] not in (None, "", "default"):
            raise InvalidRequest(f"'{key}' is a channel or server setting (admins only).")
    cleaned = {k: (None if v in ("", None, "default") else v) for k, v in values.items()}
    try:
        settings = ScopeSettings.model_validate(cleaned)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise InvalidRequest(f"'{key}' {_readable(err['msg'])}") from None
    if settings.provider is not None and settings.provider not in providers:
        raise InvalidRequest(
            f"There is no provider '{settings.provider}'. Providers: {', '.join(sorted(providers))}."
        )
    _check_moderation_lists(settings)
    return settings


def _check_moderation_lists(settings: ScopeSettings) -> None:
    """Terms and patterns are judged when saved, not when stored values are read back: a rule
    tightened in a later version must not make a server's saved settings unreadable."""
    for key in ("blocked_words", "allowed_words", "nsfw_words", "blocked_patterns"):
        values = getattr(settings, key)
        if values is None:
            continue
        problem = patterns_problem(values) if key == "blocked_patterns" else terms_problem(values)
        if problem is not None:
            raise InvalidRequest(f"'{key}' {problem}")


def _readable(msg: str) -> str:
    return msg.replace("Value error, ", "").replace("Input should be", "should be")


def merged_defaults(base: DefaultsConfig, layers: list[ScopeSettings]) -> DefaultsConfig:
    """Config defaults overlaid by saved settings, least specific layer first."""
    values: dict[str, Any] = base.model_dump()
    for layer in layers:
        for key in ("count", "aspect", "quality"):
            value = getattr(layer, key)
            if value is not None:
                values[key] = value
    return DefaultsConfig.model_validate(values)


def preferred_provider(layers: list[ScopeSettings]) -> str | None:
    """The most specific saved provider, layers given least specific first."""
    for layer in reversed(layers):
        if layer.provider is not None:
            return layer.provider
    return None


def server_limits(base: LimitsConfig, server: ScopeSettings) -> LimitsConfig:
    """The [limits] config with a server's own overrides applied."""
    overrides = {key: getattr(server, key) for key in LIMIT_KEYS if getattr(server, key) is not None}
    return base.model_copy(update=overrides) if overrides else base


def nsfw_policy(layers: list[ScopeSettings]) -> str | None:
    """The NSFW policy where a request is made: the channel's, else the server's (layers: server, channel, ...)."""
    for layer in reversed(layers[:2]):
        if layer.nsfw is not None:
            return layer.nsfw
    return None
