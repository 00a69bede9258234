"""The Discord world (the real discord.py client against the fake Discord), shared with the adapter tests."""

from tests.adapters.discord.conftest import fake, make_world, world  # noqa: F401  (shared fixtures)
