"""Per-user rate limits, queue limits, daily image caps and server budgets.

:class:`Admission` is asked once per submission, before any job is stored. It raises, in this
order, :class:`QueueFull`, :class:`RateLimited` or :class:`QuotaExceeded`, each with a friendly
chat message and, where a time is known, ``retry_at`` in epoch seconds. A rejected submission
costs the user nothing: rate tokens are taken only when every check has passed.

Conventions of ``[limits]``: a daily image cap or budget of ``0`` means *unlimited*;
``max_queue_size`` applies to everyone, exempt users included.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from bot.clock import Clock
from bot.config import LimitOverride, LimitsConfig
from bot.errors import QueueFull, QuotaExceeded, RateLimited
from bot.jobs import Origin
from storage.base import Storage

SECONDS_PER_DAY = 86_400
#: Float slack when comparing tokens and dollars, so "retry at T" is true at exactly T.
_EPSILON = 1e-9
#: How often idle (full) token buckets are dropped; a full bucket is the same as no bucket.
_SWEEP_SECONDS = 60.0

# --- user-facing texts (to move to bot/messages.py) ----------------------------------------------


def format_wait(seconds: float) -> str:
    """A short, rounded-up duration for chat: "12 s", "2 min 5 s", "3 h 20 min"."""
    total = max(1, math.ceil(seconds - 1e-6))
    if total < 60:
        return f"{total} s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def rate_limited_text(wait_seconds: float) -> str:
    return f"You're going a bit fast: try again in {format_wait(wait_seconds)}."


def user_queue_full_text(queued: int, limit: int) -> str:
    if queued >= limit:
        return (
            f"You already have {queued:,} jobs waiting or running (the most you can have is {limit:,}); "
            "you can add more as soon as one of them finishes."
        )
    return (
        f"You have {queued:,} jobs waiting or running and can have at most {limit:,}: ask for "
        f"{limit - queued:,} or fewer, or try again when one of them finishes."
    )


def global_queue_full_text() -> str:
    return "The queue is full right now; please try again when some of the waiting jobs have finished."


def _resets(seconds_left: float) -> str:
    return f"the count resets at 00:00 UTC (in {format_wait(seconds_left)})"


def user_cap_text(limit: int, used: int, seconds_left: float) -> str:
    left = max(0, limit - used)
    if left == 0:
        return f"You've made your {limit:,} images for today; {_resets(seconds_left)}."
    return (
        f"That would take you past your {limit:,} images for today ({left:,} left): "
        f"ask for fewer, or wait until {_resets(seconds_left)}."
    )


def server_cap_text(limit: int, used: int, seconds_left: float) -> str:
    left = max(0, limit - used)
    if left == 0:
        return f"This server has used its {limit:,} images for today; {_resets(seconds_left)}."
    return (
        f"That would take this server past its {limit:,} images for today ({left:,} left): "
        f"ask for fewer, or wait until {_resets(seconds_left)}."
    )


def budget_text(budget: float, spent: float, cost: float, seconds_left: float) -> str:
    left = max(0.0, budget - spent)
    when = f"it resets at 00:00 UTC (in {format_wait(seconds_left)})"
    if left < 0.005:
        return f"This server has spent its ${budget:,.2f} image budget for today; {when}."
    return (
        f"This request (about ${cost:,.2f}) would go past this server's ${budget:,.2f} daily budget "
        f"(${left:,.2f} left): try fewer or cheaper images, or wait; {when}."
    )


# --- token bucket -------------------------------------------------------------------------------


class TokenBucket:
    """``burst`` tokens, refilled at ``rate_per_second`` on the clock's monotonic time.

    A bucket starts full. A request for more tokens than ``burst`` is allowed once the bucket is
    full and leaves it in debt, so a large batch is possible but the long-run rate still holds.
    """

    def __init__(self, rate_per_second: float, burst: int, clock: Clock) -> None:
        if rate_per_second <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self._rate = rate_per_second
        self._burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._stamp = clock.monotonic()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> int:
        return self._burst

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while in debt)."""
        self._refill()
        return self._tokens

    @property
    def full(self) -> bool:
        return self.tokens >= self._burst - _EPSILON

    def wait_time(self, n: int = 1) -> float:
        """Seconds until ``n`` tokens are available (0 if now)."""
        missing = min(n, self._burst) - self.tokens
        return 0.0 if missing <= _EPSILON else missing / self._rate

    def take(self, n: int = 1) -> bool:
        """Take ``n`` tokens if available now; otherwise take nothing and return False."""
        if self.wait_time(n) > 0:
            return False
        self._tokens -= n
        return True

    def retune(self, rate_per_second: float, burst: int) -> None:
        """Change rate and capacity (a user's roles changed), keeping what was already used."""
        self._refill()
        self._rate = rate_per_second
        self._burst = burst
        self._tokens = min(self._tokens, float(burst))

    def _refill(self) -> None:
        now = self._clock.monotonic()
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._stamp = now


# --- effective limits ---------------------------------------------------------------------------


@dataclass(frozen=True)
class EffectiveLimits:
    """The limits that apply to one user on one server, after role overrides."""

    per_user_per_minute: float
    burst: int
    max_queued_per_user: int
    max_running_per_user: int
    daily_images_per_user: int
    daily_images_per_server: int
    daily_budget_usd_per_server: float
    exempt: bool


_N = TypeVar("_N", int, float)


def _generous(values: Iterable[_N | None], general: _N) -> _N:
    chosen = [v for v in values if v is not None]
    return max(chosen) if chosen else general


def _generous_cap(values: Iterable[int | None], general: int) -> int:
    chosen = [v for v in values if v is not None]
    if not chosen:
        return general
    return 0 if 0 in chosen else max(chosen)  # 0 is unlimited: the most generous cap of all


def effective_limits(config: LimitsConfig, origin: Origin) -> EffectiveLimits:
    """Apply the overrides of the user's roles to the general limits.

    For each key, the most generous value among the user's roles that set it wins; the general
    value is used only when none of them sets it (so a role can also *lower* a limit). The user
    is exempt if any of their roles is, or if ``admins_exempt`` and the platform says they are
    an admin. Server caps and the budget have no role overrides: they are the server's.
    """
    ovs: list[LimitOverride] = [config.roles[r] for r in sorted(origin.roles) if r in config.roles]
    return EffectiveLimits(
        per_user_per_minute=_generous((o.per_user_per_minute for o in ovs), config.per_user_per_minute),
        burst=_generous((o.burst for o in ovs), config.burst),
        max_queued_per_user=_generous((o.max_queued_per_user for o in ovs), config.max_queued_per_user),
        max_running_per_user=_generous((o.max_running_per_user for o in ovs), config.max_running_per_user),
        daily_images_per_user=_generous_cap(
            (o.daily_images_per_user for o in ovs), config.daily_images_per_user
        ),
        daily_images_per_server=config.daily_images_per_server,
        daily_budget_usd_per_server=config.daily_budget_usd_per_server,
        exempt=any(o.exempt for o in ovs) or (config.admins_exempt and origin.is_admin),
    )


# --- admission ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """Work admitted but not yet in the storage usage counts (queued or running)."""

    images_user: int = 0
    images_server: int = 0
    cost_server: float = 0.0
    queued_user: int = 0
    queued_total: int = 0


def utc_day(epoch: float) -> str:
    """The UTC day of an epoch time, as storage keys usage: ``YYYY-MM-DD``."""
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def next_utc_midnight(epoch: float) -> float:
    return float((math.floor(epoch / SECONDS_PER_DAY) + 1) * SECONDS_PER_DAY)


class Admission:
    """Decides whether a submission may be queued; see the module docstring for the rules."""

    def __init__(self, config: LimitsConfig, storage: Storage, clock: Clock) -> None:
        self._config = config
        self._storage = storage
        self._clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._next_sweep = clock.monotonic() + _SWEEP_SECONDS

    @property
    def tracked_users(self) -> int:
        """How many users currently have a (non-full) rate bucket in memory."""
        return len(self._buckets)

    async def admit(
        self,
        origin: Origin,
        *,
        jobs: int,
        images: int,
        cost_usd: float,
        pending: Pending,
        config: LimitsConfig | None = None,
    ) -> None:
        """Admit ``jobs`` jobs making ``images`` images for about ``cost_usd``, or raise.

        ``pending`` counts this user's and server's work that storage does not count yet.
        Raises :class:`QueueFull`, then :class:`RateLimited` (one token per job), then
        :class:`QuotaExceeded`. Daily caps and the budget count today's UTC usage; a cap or
        budget of 0 means unlimited, and a request estimated at $0 never exceeds the budget.
        Exempt users only meet the global queue size. ``config`` replaces the configured limits
        for this request (a server's own overrides from ``/settings``).
        """
        limits = effective_limits(config or self._config, origin)
        self._check_queue(limits, jobs, pending)
        if limits.exempt:
            return
        self._check_rate(self._bucket(origin, limits), jobs)
        await self._check_quotas(origin, limits, images=images, cost_usd=cost_usd, pending=pending)
        # Another submission may have taken tokens while storage was read: check again, then take.
        bucket = self._bucket(origin, limits)
        self._check_rate(bucket, jobs)
        bucket.take(jobs)

    def _check_queue(self, limits: EffectiveLimits, jobs: int, pending: Pending) -> None:
        if not limits.exempt and pending.queued_user + jobs > limits.max_queued_per_user:
            raise QueueFull(user_queue_full_text(pending.queued_user, limits.max_queued_per_user))
        if pending.queued_total + jobs > self._config.max_queue_size:
            raise QueueFull(global_queue_full_text())

    def _check_rate(self, bucket: TokenBucket, jobs: int) -> None:
        wait = bucket.wait_time(jobs)
        if wait > 0:
            raise RateLimited(rate_limited_text(wait), retry_at=self._clock.now() + wait)

    async def _check_quotas(
        self, origin: Origin, limits: EffectiveLimits, *, images: int, cost_usd: float, pending: Pending
    ) -> None:
        now = self._clock.now()
        day, reset = utc_day(now), next_utc_midnight(now)
        user_cap = limits.daily_images_per_user
        if user_cap:
            usage = await self._storage.usage(origin.platform, origin.server_id, day, user_id=origin.user_id)
            used = usage.images + pending.images_user
            if used + images > user_cap:
                raise QuotaExceeded(user_cap_text(user_cap, used, reset - now), retry_at=reset)
        server_cap, budget = limits.daily_images_per_server, limits.daily_budget_usd_per_server
        if not server_cap and not (budget and cost_usd > 0):
            return
        usage = await self._storage.usage(origin.platform, origin.server_id, day)
        used = usage.images + pending.images_server
        if server_cap and used + images > server_cap:
            raise QuotaExceeded(server_cap_text(server_cap, used, reset - now), retry_at=reset)
        spent = usage.cost_usd + pending.cost_server
        if budget and cost_usd > 0 and spent + cost_usd > budget + _EPSILON:
            raise QuotaExceeded(budget_text(budget, spent, cost_usd, reset - now), retry_at=reset)

    def _bucket(self, origin: Origin, limits: EffectiveLimits) -> TokenBucket:
        self._sweep()
        rate = limits.per_user_per_minute / 60.0
        key = (origin.platform, origin.user_id)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate, limits.burst, self._clock)
        elif bucket.rate != rate or bucket.burst != limits.burst:
            bucket.retune(rate, limits.burst)
        return bucket

    def _sweep(self) -> None:
        # Lazy and amortised: at most one pass a minute, dropping buckets that refilled to full.
        now = self._clock.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_SECONDS
        for key in [k for k, b in self._buckets.items() if b.full]:
            del self._buckets[key]
