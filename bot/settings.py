"""Saved defaults per user, channel and server, as set with ``/settings``.

Each scope stores the same small, closed set of keys; a more specific scope wins
(user over channel over server over config).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.config import DefaultsConfig
from bot.errors import InvalidRequest
from bot.messages import unknown_setting
from bot.request import MAX_COUNT, AspectRatio, Quality

Scope = Literal["user", "channel", "server"]
SCOPES: tuple[Scope, ...] = ("user", "channel", "server")


class ScopeSettings(BaseModel):
    """Defaults a user, channel or server may save."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: str | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    aspect: str | None = None
    quality: Quality | None = None

    @field_validator("aspect")
    @classmethod
    def _ratio(cls, value: str | None) -> str | None:
        return None if value is None else str(AspectRatio.parse(value))


SETTING_KEYS = sorted(ScopeSettings.model_fields)


def parse_settings(values: Mapping[str, Any], *, providers: Collection[str]) -> ScopeSettings:
    """Validate user-supplied settings; errors are friendly :class:`InvalidRequest`."""
    for key in values:
        if key not in ScopeSettings.model_fields:
            raise InvalidRequest(unknown_setting(key, SETTING_KEYS))
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
    return settings


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
