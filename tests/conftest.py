"""Shared fixtures: an app on real SQLite in a temp dir, with the sketch provider and a recording surface."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from bot.app import App, build_app
from bot.config import config_from_dict
from tests.fakes.surface import RecordingSurface

AppFactory = Callable[..., Awaitable[tuple[App, RecordingSurface]]]


@pytest.fixture
async def make_app(tmp_path: Path) -> AsyncIterator[AppFactory]:
    """Build (and later stop) apps; keyword overrides merge into the config mapping."""
    built: list[App] = []

    async def factory(start: bool = True, **sections: Any) -> tuple[App, RecordingSurface]:
        raw: dict[str, Any] = {
            "storage": {"dir": str(tmp_path / "data")},
            "providers": {"sketch": {"type": "sketch", "delay": 0.05, "size": 64, "preview_frames": 2}},
        }
        for key, value in sections.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict) and key != "providers":
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        app = await build_app(config_from_dict(raw, environ={}))
        surface = RecordingSurface()
        app.add_surface(surface)
        if start:
            await app.start()
        built.append(app)
        return app, surface

    yield factory
    for app in built:
        await app.stop(grace_seconds=0)
