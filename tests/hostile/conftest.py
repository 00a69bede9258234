"""The Discord world (the real discord.py client against the fake Discord) and the web playground,
shared with the adapters' own tests."""

from tests.adapters.discord.conftest import fake, make_world, world  # noqa: F401  (shared fixtures)
from tests.adapters.web.conftest import make_web, web  # noqa: F401  (shared fixtures)
