"""Several servers behind one provider alias: least-busy choice, passive and active health checks.

An admin with two GPUs lists both (``base_url = ["http://gpu1:7860", "http://gpu2:7860"]``) and
users keep typing one ``--provider``. :meth:`ServerPool.run` gives each call to the up server
with the fewest calls in flight (ties go to the one used least, so a quiet pool round-robins).
A server that does not answer at all is marked down and the call moves on to the next one at
once: nothing can have started there. A server that fails mid-call (5xx) is marked down too,
and the error goes up to the runner, which retries or falls back. A down server is probed again
once ``recheck_seconds`` have passed, when a call next needs a server, and comes back if the
probe passes; when every server is down, they are all probed again at once rather than failing
fast. ``health`` probes every server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydantic import Field, field_validator, model_validator

from bot.clock import Clock
from bot.errors import ProviderTimeout, ProviderUnavailable
from bot.generation import Health
from providers.base import ProviderSettings
from providers.http_client import Unreachable, normalise_base_url

T = TypeVar("T")
#: Checks one server: Health(ok, one-line detail). Must not raise.
Probe = Callable[[str], Awaitable[Health]]


class PooledSettings(ProviderSettings):
    """Keys shared by the self-hosted types (a1111, comfyui): one server or several."""

    #: One address, or a list of them: several servers behind this alias.
    base_url: str | None = None
    servers: list[str] = Field(default_factory=list)
    #: Seconds before a server marked down is probed again.
    recheck_seconds: float = Field(default=30.0, ge=0)
    #: Seconds to wait for a connection before a server counts as unreachable.
    connect_timeout_seconds: float = Field(default=5.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _list_in_base_url(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("base_url"), list):
            data = {**data, "servers": [*data["base_url"], *data.get("servers", [])]}
            data.pop("base_url")
        return data

    @field_validator("servers")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return [normalise_base_url(url, strip=cls.url_suffixes()) for url in value]

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else normalise_base_url(value, strip=cls.url_suffixes())

    @model_validator(mode="after")
    def _some_server(self) -> PooledSettings:
        if not self.urls:
            raise ValueError("base_url is required: the server's address, e.g. base_url = \"http://127.0.0.1:7860\"")
        return self

    @classmethod
    def url_suffixes(cls) -> tuple[str, ...]:
        """API paths users paste by mistake; stripped from the addresses."""
        return ()

    @property
    def urls(self) -> list[str]:
        """Every server, in config order, without duplicates."""
        found = ([self.base_url] if self.base_url else []) + self.servers
        return list(dict.fromkeys(found))


@dataclass
class Server:
    """One backend server and what the pool knows about it."""

    url: str
    busy: int = 0
    served: int = 0
    down_since: float | None = None
    reason: str = ""
    probing: bool = False

    @property
    def up(self) -> bool:
        return self.down_since is None


class ServerPool:
    """Least-busy selection over a provider's servers; see the module docstring."""

    def __init__(
        self, urls: Sequence[str], *, provider: str, clock: Clock, recheck_seconds: float, probe: Probe
    ) -> None:
        self.servers = [Server(url) for url in urls]
        self._provider = provider
        self._clock = clock
        self._recheck = recheck_seconds
        self._probe = probe

    async def run(self, work: Callable[[Server], Awaitable[T]]) -> T:
        """``work`` on the least-busy up server; on to the next one while servers are unreachable."""
        tried: set[str] = set()
        while True:
            server = await self._pick(tried)
            tried.add(server.url)
            server.busy += 1
            server.served += 1
            try:
                result = await work(server)
            except Unreachable as exc:
                self.mark_down(server, exc.message)
                continue
            except ProviderTimeout:
                raise  # slow is not down: the server is still working
            except ProviderUnavailable as exc:
                self.mark_down(server, exc.message)
                raise
            finally:
                server.busy -= 1
            self.mark_up(server)
            return result

    def mark_down(self, server: Server, reason: str) -> None:
        if server.up:
            server.down_since = self._clock.monotonic()
        server.reason = reason

    def mark_up(self, server: Server) -> None:
        server.down_since = None
        server.reason = ""

    async def health(self) -> Health:
        """Probe every server; ok while at least one is up. The detail is one line."""
        results = await asyncio.gather(*(self._check(server) for server in self.servers))
        up = [s for s, h in zip(self.servers, results, strict=True) if h.ok]
        if len(self.servers) == 1:
            return results[0]
        problems = "; ".join(h.detail for h in results if not h.ok)
        summary = f"{len(up)} of {len(self.servers)} servers up"
        return Health(ok=bool(up), detail=f"{summary}; {problems}" if problems else summary)

    async def _check(self, server: Server) -> Health:
        health = await self._probe(server.url)
        if health.ok:
            self.mark_up(server)
        else:
            self.mark_down(server, health.detail)
        return health

    async def _pick(self, tried: set[str]) -> Server:
        """The least-busy up server not yet tried; down servers are probed when due, or when none is up."""
        probed: set[str] = set()
        now = self._clock.monotonic()
        for server in self._down(tried):
            if now - (server.down_since or now) >= self._recheck:
                await self._reprobe(server, probed)
        candidates = [s for s in self.servers if s.up and s.url not in tried]
        if not candidates:  # everything is down: looking again now is the only useful thing left
            for server in self._down(tried):
                if server.url not in probed:
                    await self._reprobe(server, probed)
            candidates = [s for s in self.servers if s.up and s.url not in tried]
        if candidates:
            return min(candidates, key=lambda s: (s.busy, s.served))
        raise self._all_down()

    def _down(self, tried: set[str]) -> list[Server]:
        return [s for s in self.servers if not s.up and s.url not in tried and not s.probing]

    async def _reprobe(self, server: Server, probed: set[str]) -> None:
        server.probing = True
        probed.add(server.url)
        try:
            await self._check(server)
        finally:
            server.probing = False

    def _all_down(self) -> ProviderUnavailable:
        # No retry_after: the next call probes every server again, so the queue's backoff is enough.
        reasons = "; ".join(s.reason for s in self.servers if not s.up and s.reason) or "no server answered"
        if len(self.servers) == 1:
            return ProviderUnavailable(reasons, provider=self._provider)
        return ProviderUnavailable(f"all {len(self.servers)} servers are down: {reasons}", provider=self._provider)
