"""The [discord] config keys, and pointing discord.py at other endpoints (and back)."""

from __future__ import annotations

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.endpoints import point_at
from bot.config import config_from_dict
from bot.errors import ConfigError


def test_point_at_sets_and_restores_the_endpoints() -> None:
    base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
    restore = point_at("http://proxy.local/api/v10/", "ws://proxy.local/gw")
    try:
        assert Route.BASE == "http://proxy.local/api/v10"
        assert DiscordWebSocket.DEFAULT_GATEWAY == yarl.URL("ws://proxy.local/gw")
    finally:
        restore()
    assert (Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY) == (base, gateway)


def test_discord_keys_are_validated() -> None:
    config = config_from_dict({"discord": {"shard_count": 4, "shard_ids": [0, 1], "thread_mode": "channel"}},
                              environ={})
    assert config.discord.shard_ids == [0, 1] and config.discord.upload_limit_mb == 10
    for bad in ({"shard_ids": [0]}, {"shard_count": 2, "shard_ids": [2]}, {"thread_mode": "forum"},
                {"dev_guild_ids": ["abc"]}):
        with pytest.raises(ConfigError):
            config_from_dict({"discord": bad}, environ={})
