"""Configuration: a TOML file read into closed, validated models.

Key names are a public contract (documented in ``config.example.toml``). Unknown keys are
errors that name their key path. Any string value may be ``"${ENV_NAME}"`` (or contain such a
reference); it is expanded from the environment when the file is loaded, and a missing variable
is an error naming the variable and the key that needs it. With no file at all the defaults
work: storage in ``./imaginebot-data``, the offline ``sketch`` provider, the web playground on
127.0.0.1:8080.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from bot.errors import ConfigError
from bot.request import MAX_COUNT, AspectRatio, Quality

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: No real config nests this deep; a file that does would exhaust the stack instead of failing clearly.
_MAX_DEPTH = 32


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageConfig(_Closed):
    dir: Path = Path("./imaginebot-data")
    #: SQLite synchronous mode: "normal" survives a process crash (the promise we make);
    #: "full" also survives power loss, at a cost in throughput.
    synchronous: Literal["normal", "full"] = "normal"


class WebConfig(_Closed):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    #: The address people use to reach the web server, for links the bot hands out in chat.
    public_url: str | None = None
    #: HMAC key for signed gallery links; generated and kept in the storage dir when unset.
    link_secret: SecretStr | None = None
    #: How long a signed gallery link stays valid.
    link_ttl_hours: float = Field(default=168.0, gt=0)


class DiscordConfig(_Closed):
    token: SecretStr | None = None
    #: REST base including the version, e.g. "https://discord.com/api/v10" (a proxy or a test fake).
    api_base_url: str | None = None
    #: Gateway websocket URL, e.g. "wss://gateway.discord.gg/" (a proxy or a test fake).
    gateway_url: str | None = None
    #: Guilds whose commands are synced at start (instant, for development); empty: sync globally.
    dev_guild_ids: list[str] = Field(default_factory=list)
    #: Whether to sync the command definitions at start (off when another process does it).
    sync_commands: bool = True
    #: "thread": results go to a thread made from the job's card; "channel": into the channel.
    thread_mode: Literal["thread", "channel"] = "thread"
    #: Reaction shortcuts on results (reroll, variations, delete, favourite, DM).
    reactions: bool = True
    #: Shards in total and the ones this process runs; unset: one unsharded connection.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: list[int] | None = None
    #: Largest file the bot uploads, in MiB (Discord's default per-file limit is 10 MiB).
    upload_limit_mb: float = Field(default=10.0, gt=0, le=500)

    @field_validator("dev_guild_ids")
    @classmethod
    def _snowflakes(cls, value: list[str]) -> list[str]:
        for guild_id in value:
            if not guild_id.isdigit():
                raise ValueError(f"'{guild_id}' is not a guild id (digits only)")
        return value

    @model_validator(mode="after")
    def _shards(self) -> DiscordConfig:
        if self.shard_ids is not None:
            if self.shard_count is None:
                raise ValueError("shard_ids needs shard_count")
            bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
            if bad:
                raise ValueError(f"shard_ids must be between 0 and shard_count - 1 (got {bad})")
        return self


class SlackConfig(_Closed):
    #: Bot token (xoxb-...); unset: no Slack.
    bot_token: SecretStr | None = None
    #: App-level token (xapp-..., connections:write): set, the bot uses Socket Mode; unset, HTTP.
    app_token: SecretStr | None = None
    #: Signs Slack's HTTP requests to /slack/events (needed without app_token).
    signing_secret: SecretStr | None = None
    #: Web API base URL, e.g. "https://slack.com/api/" (a proxy or a test fake).
    api_base_url: str | None = None
    #: Largest file the bot uploads, in MiB; bigger images are re-encoded or downscaled to fit.
    upload_limit_mb: float = Field(default=20.0, gt=0, le=1000)


class RoutingConfig(_Closed):
    default: str = "sketch"
    fallback: list[str] = Field(default_factory=list)


class LimitOverride(_Closed):
    """Per-role overrides of [limits]; unset keys keep the general value."""

    per_user_per_minute: float | None = Field(default=None, gt=0)
    burst: int | None = Field(default=None, ge=1)
    max_queued_per_user: int | None = Field(default=None, ge=1)
    max_running_per_user: int | None = Field(default=None, ge=1)
    daily_images_per_user: int | None = Field(default=None, ge=0)
    exempt: bool = False


class LimitsConfig(_Closed):
    per_user_per_minute: float = Field(default=6.0, gt=0)
    burst: int = Field(default=3, ge=1)
    max_queued_per_user: int = Field(default=10, ge=1)
    max_running_per_user: int = Field(default=2, ge=1)
    daily_images_per_user: int = Field(default=200, ge=0)
    daily_images_per_server: int = Field(default=2000, ge=0)
    daily_budget_usd_per_server: float = Field(default=5.0, ge=0)
    max_queue_size: int = Field(default=10_000, ge=1)
    #: Admins (as the platform reports them) skip rate limits, caps and budgets.
    admins_exempt: bool = True
    #: Overrides keyed by role id or name.
    roles: dict[str, LimitOverride] = Field(default_factory=dict)


class QueueConfig(_Closed):
    job_timeout_seconds: float = Field(default=600.0, gt=0)
    max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_seconds: float = Field(default=2.0, ge=0)
    retry_max_seconds: float = Field(default=60.0, ge=0)
    max_permutations: int = Field(default=4, ge=1, le=16)


class DefaultsConfig(_Closed):
    count: int = Field(default=4, ge=1, le=MAX_COUNT)
    aspect: str = "1:1"
    quality: Quality | None = None

    @field_validator("aspect")
    @classmethod
    def _ratio(cls, value: str) -> str:
        return str(AspectRatio.parse(value))


class StyleConfig(_Closed):
    """A style preset: a prompt wrapper with ``{prompt}``, a negative prompt, default parameters."""

    prompt: str = "{prompt}"
    negative: str | None = None
    description: str = ""
    aspect: str | None = None
    count: int | None = Field(default=None, ge=1, le=MAX_COUNT)
    steps: int | None = Field(default=None, ge=1, le=150)
    cfg: float | None = Field(default=None, ge=0, le=30)
    quality: Quality | None = None
    provider: str | None = None

    @field_validator("prompt")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if "{prompt}" not in value:
            raise ValueError("a style's prompt must contain {prompt}")
        return value

    @field_validator("aspect")
    @classmethod
    def _ratio(cls, value: str | None) -> str | None:
        return None if value is None else str(AspectRatio.parse(value))


class TemplateConfig(_Closed):
    """A saved prompt with flags; ``{prompt}`` (optional) takes the text the user adds."""

    text: str = Field(min_length=1)
    description: str = ""


class Config(_Closed):
    storage: StorageConfig = StorageConfig()
    web: WebConfig = WebConfig()
    discord: DiscordConfig = DiscordConfig()
    slack: SlackConfig = SlackConfig()
    #: Raw provider sections; each provider type validates its own keys (see providers/registry.py).
    providers: dict[str, dict[str, Any]] = Field(
        default_factory=lambda: {"sketch": {"type": "sketch"}}
    )
    routing: RoutingConfig = RoutingConfig()
    limits: LimitsConfig = LimitsConfig()
    queue: QueueConfig = QueueConfig()
    defaults: DefaultsConfig = DefaultsConfig()
    styles: dict[str, StyleConfig] = Field(default_factory=dict)
    templates: dict[str, TemplateConfig] = Field(default_factory=dict)

    @field_validator("providers")
    @classmethod
    def _providers_have_type(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for name, section in value.items():
            if not isinstance(section, dict) or not isinstance(section.get("type"), str):
                raise ValueError(f"[providers.{name}] needs a type, e.g. type = \"sketch\"")
        return value


def load_config(path: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate a config file; ``None`` gives the defaults.

    Raises :class:`ConfigError` with every problem and its key path.
    """
    env = os.environ if environ is None else environ
    if path is None:
        raw: dict[str, Any] = {}
    else:
        p = Path(path)
        try:
            raw = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {p} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p} is not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{p} is not UTF-8 text (at byte {exc.start}); save it as UTF-8") from None
        except RecursionError:
            raise ConfigError(f"{p} nests tables or arrays too deeply to read") from None
        except OSError as exc:
            raise ConfigError(f"config file {p} cannot be read: {exc.strerror or exc}") from exc
    return config_from_dict(raw, environ=env)


def config_from_dict(raw: Mapping[str, Any], *, environ: Mapping[str, str] | None = None) -> Config:
    """Validate an already-parsed config mapping (``${ENV}`` references are expanded)."""
    env = os.environ if environ is None else environ
    expanded = _expand(dict(raw), env, ())
    try:
        config = Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None
    _check_references(config)
    return config


def _expand(value: Any, env: Mapping[str, str], path: tuple[str, ...]) -> Any:
    if len(path) > _MAX_DEPTH:
        raise ConfigError(f"{'.'.join(path[:4])}...: nested more than {_MAX_DEPTH} levels deep")
    if isinstance(value, str):
        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in env:
                key = ".".join(path) or "(root)"
                raise ConfigError(f"{key} needs the environment variable {name}: set {name} and start again")
            return env[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand(v, env, (*path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, (*path, str(i))) for i, v in enumerate(value)]
    return value


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        if err["type"] == "extra_forbidden":
            lines.append(f"{key}: unknown key (check the spelling against config.example.toml)")
        else:
            lines.append(f"{key}: {err['msg']}")
    return "invalid config:\n  " + "\n  ".join(lines)


def _check_references(config: Config) -> None:
    names = set(config.providers)
    problems = []
    if config.routing.default not in names:
        problems.append(f"routing.default: no provider named '{config.routing.default}' in [providers]")
    for i, name in enumerate(config.routing.fallback):
        if name not in names:
            problems.append(f"routing.fallback.{i}: no provider named '{name}' in [providers]")
    for style_name, style in config.styles.items():
        if style.provider is not None and style.provider not in names:
            problems.append(f"styles.{style_name}.provider: no provider named '{style.provider}'")
    if problems:
        raise ConfigError("invalid config:\n  " + "\n  ".join(problems))
