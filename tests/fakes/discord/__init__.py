"""A fake Discord (REST under /api/v10 and the gateway) for driving the real discord.py offline."""

from tests.fakes.discord.server import FakeDiscord

__all__ = ["FakeDiscord"]
