"""Config: defaults with no file, the example file loads, errors name their key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import config_from_dict, load_config
from bot.errors import ConfigError
from providers.registry import build_providers

ROOT = Path(__file__).resolve().parents[2]


def test_no_file_gives_working_defaults() -> None:
    config = load_config(None, environ={})
    assert config.storage.dir == Path("imaginebot-data")
    assert config.routing.default == "sketch"
    assert (config.web.host, config.web.port) == ("127.0.0.1", 8080)
    assert build_providers(config.providers, clock=FakeClock())["sketch"].type_name == "sketch"


def test_example_config_loads_and_builds_every_provider() -> None:
    config = load_config(ROOT / "config.example.toml", environ={})
    providers = build_providers(config.providers, clock=FakeClock())
    assert set(providers) == set(config.providers)
    assert "watercolor" in config.styles and "portrait" in config.templates


def test_unknown_key_names_its_path() -> None:
    with pytest.raises(ConfigError, match=r"limits\.per_user_per_minit: unknown key"):
        config_from_dict({"limits": {"per_user_per_minit": 3}}, environ={})


def test_unknown_provider_key_names_its_path() -> None:
    config = config_from_dict({"providers": {"sketch": {"type": "sketch", "dleay": 1}}}, environ={})
    with pytest.raises(ConfigError, match=r"providers\.sketch\.dleay: unknown key"):
        build_providers(config.providers, clock=FakeClock())


def test_bad_value_names_its_path_and_rule() -> None:
    with pytest.raises(ConfigError, match=r"limits\.burst: .*greater than or equal to 1"):
        config_from_dict({"limits": {"burst": 0}}, environ={})


def test_env_reference_is_expanded_and_kept_secret() -> None:
    config = config_from_dict({"discord": {"token": "${DISCORD_TOKEN}"}}, environ={"DISCORD_TOKEN": "abc.def"})
    assert config.discord.token is not None
    assert config.discord.token.get_secret_value() == "abc.def"
    assert "abc.def" not in repr(config) and "abc.def" not in str(config.discord)


def test_missing_env_variable_names_variable_and_key() -> None:
    with pytest.raises(ConfigError, match=r"slack\.bot_token needs the environment variable SLACK_BOT_TOKEN"):
        config_from_dict({"slack": {"bot_token": "${SLACK_BOT_TOKEN}"}}, environ={})


def test_routing_must_name_configured_providers() -> None:
    with pytest.raises(ConfigError, match=r"routing\.fallback\.0: no provider named 'openai'"):
        config_from_dict({"routing": {"fallback": ["openai"]}}, environ={})


def test_provider_without_type_is_explained() -> None:
    with pytest.raises(ConfigError, match=r"\[providers\.mine\] needs a type"):
        config_from_dict({"providers": {"mine": {"model": "x"}}}, environ={})


def test_unknown_provider_type_lists_known_types() -> None:
    config = config_from_dict({"providers": {"x": {"type": "dalle9"}}, "routing": {"default": "x"}}, environ={})
    with pytest.raises(ConfigError, match=r"unknown provider type 'dalle9' \(known types: .*sketch"):
        build_providers(config.providers, clock=FakeClock())


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[storage\ndir = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_style_needs_placeholder() -> None:
    with pytest.raises(ConfigError, match=r"styles\.bad\.prompt: .*\{prompt\}"):
        config_from_dict({"styles": {"bad": {"prompt": "no placeholder"}}}, environ={})
