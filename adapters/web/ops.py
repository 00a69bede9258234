"""``/healthz`` (storage and provider health, JSON) and ``/metrics`` (Prometheus text format)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from adapters.web.state import WebState, state_of
from bot.generation import Health, Provider
from bot.metrics import CONTENT_TYPE

PROVIDER_HEALTH_TIMEOUT = 5.0
#: Provider health is remembered this long: a probe every few seconds must not become a stream
#: of calls to a paid API.
HEALTH_CACHE_SECONDS = 30.0


def setup(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)


async def healthz(request: web.Request) -> web.Response:
    state = state_of(request)
    try:
        storage_ok = await asyncio.wait_for(state.app.storage.healthy(), PROVIDER_HEALTH_TIMEOUT)
    except TimeoutError:
        storage_ok = False
    providers = await _provider_health(state)
    ok = storage_ok and any(h["ok"] for h in providers.values())
    body = {"status": "ok" if ok else "degraded", "storage": {"ok": storage_ok}, "providers": providers}
    return web.json_response(body, status=200 if ok else 503, headers={"Cache-Control": "no-store"})


async def _provider_health(state: WebState) -> dict[str, dict[str, Any]]:
    now = state.app.clock.monotonic()
    cached = state.health_cache
    if cached is not None and now - cached[0] < HEALTH_CACHE_SECONDS:
        return cached[1]
    names = sorted(state.app.providers)
    results = await asyncio.gather(*(_check(state.app.providers[n]) for n in names))
    health = {name: {"ok": h.ok, "detail": h.detail} for name, h in zip(names, results, strict=True)}
    state.health_cache = (now, health)
    return health


async def _check(provider: Provider) -> Health:
    try:
        return await asyncio.wait_for(provider.health(), PROVIDER_HEALTH_TIMEOUT)
    except TimeoutError:
        return Health(ok=False, detail=f"no answer within {PROVIDER_HEALTH_TIMEOUT:g} s")


async def metrics(request: web.Request) -> web.Response:
    body = state_of(request).metrics.render()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
