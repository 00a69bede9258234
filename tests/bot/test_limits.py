"""Admission: what a user sees when they go too fast, queue too much or use up a day's images or budget."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest

from bot.clock import FakeClock
from bot.config import LimitOverride, LimitsConfig
from bot.errors import QueueFull, QuotaExceeded, RateLimited
from bot.jobs import Origin, UsageSummary
from bot.limits import Admission, Pending, TokenBucket, effective_limits, format_wait
from storage.base import Storage

# 2024-03-10 23:59:30 UTC: thirty seconds before a UTC midnight.
MIDNIGHT = datetime(2024, 3, 11, tzinfo=UTC).timestamp()
NO_PENDING = Pending()


class FakeUsage:
    """Only ``Storage.usage``: images and cost per (platform, server, day[, user])."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str, str, str | None], tuple[int, float]] = {}
        self.calls = 0

    def record(self, server: str, day: str, user: str, images: int, cost: float = 0.0) -> None:
        for key in (("discord", server, day, user), ("discord", server, day, None)):
            old_images, old_cost = self.rows.get(key, (0, 0.0))
            self.rows[key] = (old_images + images, old_cost + cost)

    async def usage(
        self, platform: str, server_id: str, day: str, user_id: str | None = None
    ) -> UsageSummary:
        self.calls += 1
        images, cost = self.rows.get((platform, server_id, day, user_id), (0, 0.0))
        return UsageSummary(day=day, images=images, cost_usd=cost)


def origin(
    user: str = "u1", server: str = "g1", *, roles: frozenset[str] = frozenset(), admin: bool = False
) -> Origin:
    return Origin("discord", server, "c1", user, roles=roles, is_admin=admin)


def make(
    config: LimitsConfig | None = None, *, start: float = 1_700_000_000.0
) -> tuple[Admission, FakeUsage, FakeClock]:
    clock = FakeClock(start=start)
    usage = FakeUsage()
    return Admission(config or LimitsConfig(), cast(Storage, cast(Any, usage)), clock), usage, clock


async def admit(adm: Admission, who: Origin | None = None, *, jobs: int = 1, images: int = 1,
                cost: float = 0.0, pending: Pending = NO_PENDING) -> None:
    await adm.admit(who or origin(), jobs=jobs, images=images, cost_usd=cost, pending=pending)


def today(clock: FakeClock) -> str:
    return datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%d")


# --- rate ---------------------------------------------------------------------------------------


async def test_burst_then_refill_tells_the_exact_time_to_come_back() -> None:
    adm, _, clock = make(LimitsConfig(per_user_per_minute=6, burst=3))
    for _ in range(3):
        await admit(adm)
    with pytest.raises(RateLimited) as err:
        await admit(adm)
    assert err.value.retry_at == pytest.approx(clock.now() + 10.0)
    assert err.value.message == "You're going a bit fast: try again in 10 s."

    await clock.advance(4.0)
    with pytest.raises(RateLimited) as err:
        await admit(adm)
    assert err.value.retry_at == pytest.approx(clock.now() + 6.0)
    assert "try again in 6 s" in err.value.message

    await clock.advance(6.0)  # exactly at retry_at the request goes through
    await admit(adm)
    with pytest.raises(RateLimited):
        await admit(adm)


async def test_one_token_per_job_and_a_batch_larger_than_the_burst_leaves_a_debt() -> None:
    adm, _, clock = make(LimitsConfig(per_user_per_minute=6, burst=3))
    await admit(adm, jobs=2)
    with pytest.raises(RateLimited) as err:
        await admit(adm, jobs=2)  # one token left, two needed
    assert err.value.retry_at == pytest.approx(clock.now() + 10.0)

    await clock.advance(30.0)  # full again
    await admit(adm, jobs=4)  # four prompt permutations with a burst of 3: allowed from a full bucket
    with pytest.raises(RateLimited) as err:
        await admit(adm)
    assert err.value.retry_at == pytest.approx(clock.now() + 20.0)  # pays back the extra job first


async def test_a_rejected_request_costs_no_tokens() -> None:
    config = LimitsConfig(per_user_per_minute=6, burst=3, max_queued_per_user=5, daily_images_per_server=10)
    adm, usage, clock = make(config)
    usage.record("full-server", today(clock), "someone", 10)
    for _ in range(5):
        with pytest.raises(QueueFull):
            await admit(adm, pending=Pending(queued_user=5))
        with pytest.raises(QuotaExceeded):
            await admit(adm, origin(server="full-server"))
    for _ in range(3):  # the whole burst is still there
        await admit(adm)


async def test_each_user_has_their_own_rate() -> None:
    adm, _, _ = make(LimitsConfig(burst=1))
    await admit(adm, origin("alice"))
    with pytest.raises(RateLimited):
        await admit(adm, origin("alice"))
    await admit(adm, origin("bob"))


def test_bucket_waits_are_exact_and_tokens_never_exceed_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate_per_second=0.5, burst=2, clock=clock)
    assert bucket.wait_time() == 0.0
    assert bucket.take(2)
    assert not bucket.take()
    assert bucket.wait_time() == pytest.approx(2.0)
    assert bucket.wait_time(2) == pytest.approx(4.0)
    assert not bucket.full


async def test_idle_users_do_not_keep_rate_state_in_memory() -> None:
    adm, _, clock = make(LimitsConfig(per_user_per_minute=6, burst=3))
    for i in range(1_000):
        await admit(adm, origin(f"user-{i}"))
    assert adm.tracked_users == 1_000
    await clock.advance(120.0)  # everyone's bucket has refilled
    await admit(adm, origin("late"))
    assert adm.tracked_users == 1


# --- roles and exemptions -----------------------------------------------------------------------


def test_most_generous_role_wins_and_a_role_can_also_lower_a_limit() -> None:
    config = LimitsConfig(
        burst=3,
        daily_images_per_user=200,
        roles={
            "vip": LimitOverride(burst=10, per_user_per_minute=60, daily_images_per_user=0),
            "artist": LimitOverride(burst=5, daily_images_per_user=500),
            "newcomer": LimitOverride(burst=1, max_queued_per_user=2),
        },
    )
    both = effective_limits(config, origin(roles=frozenset({"artist", "newcomer"})))
    assert (both.burst, both.daily_images_per_user, both.max_queued_per_user) == (5, 500, 2)
    vip = effective_limits(config, origin(roles=frozenset({"vip", "artist", "unknown-role"})))
    assert (vip.burst, vip.per_user_per_minute, vip.daily_images_per_user) == (10, 60, 0)  # 0: unlimited
    newcomer = effective_limits(config, origin(roles=frozenset({"newcomer"})))
    assert newcomer.burst == 1
    assert not newcomer.exempt
    plain = effective_limits(config, origin())
    assert (plain.burst, plain.daily_images_per_server) == (3, config.daily_images_per_server)


async def test_a_vip_role_really_gets_a_bigger_burst() -> None:
    config = LimitsConfig(burst=2, roles={"vip": LimitOverride(burst=6)})
    adm, _, _ = make(config)
    vip = origin("v", roles=frozenset({"vip"}))
    for _ in range(6):
        await admit(adm, vip)
    with pytest.raises(RateLimited):
        await admit(adm, vip)


async def test_admins_and_exempt_roles_skip_rate_caps_and_budget_but_not_the_global_queue() -> None:
    config = LimitsConfig(
        burst=1, max_queued_per_user=1, daily_images_per_user=1, daily_images_per_server=1,
        daily_budget_usd_per_server=0.01, max_queue_size=100, roles={"mods": LimitOverride(exempt=True)},
    )
    adm, usage, clock = make(config)
    usage.record("g1", today(clock), "u1", 50, cost=3.0)
    for who in (origin(admin=True), origin("mod", roles=frozenset({"mods"}))):
        for _ in range(5):
            busy = Pending(queued_user=20, queued_total=90)
            await admit(adm, who, jobs=4, images=16, cost=1.0, pending=busy)
        with pytest.raises(QueueFull) as err:
            await admit(adm, who, jobs=11, pending=Pending(queued_total=90))
        assert "queue is full" in err.value.message
    assert usage.calls == 0  # exempt users never cost a storage query

    strict, _, _ = make(config.model_copy(update={"admins_exempt": False}))
    await admit(strict, origin(admin=True))
    with pytest.raises(RateLimited):
        await admit(strict, origin(admin=True))


# --- queue --------------------------------------------------------------------------------------


async def test_queue_full_says_how_many_and_when_to_try_again() -> None:
    adm, _, _ = make(LimitsConfig(max_queued_per_user=10, max_queue_size=50))
    with pytest.raises(QueueFull) as err:
        await admit(adm, jobs=1, pending=Pending(queued_user=10))
    assert err.value.retry_at is None
    assert "You already have 10 jobs waiting or running" in err.value.message
    assert "as soon as one of them finishes" in err.value.message
    with pytest.raises(QueueFull) as err:
        await admit(adm, jobs=4, pending=Pending(queued_user=8))
    assert "ask for 2 or fewer" in err.value.message
    await admit(adm, jobs=2, pending=Pending(queued_user=8))
    with pytest.raises(QueueFull):
        await admit(adm, origin("other"), jobs=1, pending=Pending(queued_total=50))


async def test_queue_is_checked_before_the_rate() -> None:
    adm, _, _ = make(LimitsConfig(burst=1, max_queued_per_user=1))
    await admit(adm)
    with pytest.raises(QueueFull):
        await admit(adm, pending=Pending(queued_user=1))


# --- daily caps and budget ----------------------------------------------------------------------


async def test_user_cap_counts_storage_usage_pending_work_and_this_request() -> None:
    adm, usage, clock = make(LimitsConfig(daily_images_per_user=200, burst=10))
    usage.record("g1", today(clock), "u1", 195)
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm, images=2, pending=Pending(images_user=4))
    assert "past your 200 images for today (1 left)" in err.value.message
    await admit(adm, images=1, pending=Pending(images_user=4))
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm, images=1, pending=Pending(images_user=5))
    assert err.value.message.startswith(
        "You've made your 200 images for today; the count resets at 00:00 UTC"
    )
    await admit(adm, origin("u2"), images=4)  # another user of the same server is unaffected


async def test_server_cap_and_friendly_text() -> None:
    adm, usage, clock = make(LimitsConfig(daily_images_per_server=2000, burst=10))
    usage.record("g1", today(clock), "someone", 1990)
    await admit(adm, images=4, pending=Pending(images_server=6))  # exactly 2,000
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm, origin("newcomer"), images=1, pending=Pending(images_server=10))
    assert err.value.message.startswith(
        "This server has used its 2,000 images for today; the count resets at 00:00 UTC"
    )
    await admit(adm, origin(server="g2"), images=4)  # per-server: another server has its own count


async def test_budget_counts_spent_pending_and_estimated_cost() -> None:
    adm, usage, clock = make(LimitsConfig(daily_budget_usd_per_server=5.0, burst=10))
    usage.record("g1", today(clock), "u1", 10, cost=4.50)
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm, cost=0.24, pending=Pending(cost_server=0.30))
    assert "about $0.24" in err.value.message
    assert "$5.00 daily budget ($0.20 left)" in err.value.message
    await admit(adm, cost=0.20, pending=Pending(cost_server=0.30))
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm, cost=0.04, pending=Pending(cost_server=0.50))
    assert err.value.message.startswith("This server has spent its $5.00 image budget for today")
    await admit(adm, cost=0.0, pending=Pending(cost_server=0.50))  # a free provider still works
    await admit(adm, origin(server="g2"), cost=4.0)  # another server has its own budget


async def test_zero_caps_and_budget_mean_unlimited() -> None:
    config = LimitsConfig(
        daily_images_per_user=0, daily_images_per_server=0, daily_budget_usd_per_server=0, burst=5
    )
    adm, usage, clock = make(config)
    usage.record("g1", today(clock), "u1", 1_000_000, cost=1e6)
    await admit(adm, images=16, cost=100.0)
    assert usage.calls == 0


async def test_caps_reset_at_utc_midnight() -> None:
    adm, usage, clock = make(LimitsConfig(daily_images_per_user=10), start=MIDNIGHT - 30)
    usage.record("g1", today(clock), "u1", 10)
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm)
    assert err.value.retry_at == MIDNIGHT
    assert "resets at 00:00 UTC (in 30 s)" in err.value.message

    await clock.advance(29.0)
    with pytest.raises(QuotaExceeded):
        await admit(adm)
    await clock.advance(1.0)  # 00:00:00 UTC: a new day, with no usage yet
    await admit(adm, images=10)
    with pytest.raises(QuotaExceeded) as err:
        await admit(adm, pending=Pending(images_user=10))
    assert err.value.retry_at == MIDNIGHT + 86_400
    assert "(in 24 h)" in err.value.message


def test_wait_texts_round_up_to_what_a_person_reads() -> None:
    assert format_wait(0.2) == "1 s"
    assert format_wait(11.01) == "12 s"
    assert format_wait(12.0000000001) == "12 s"
    assert format_wait(60) == "1 min"
    assert format_wait(125) == "2 min 5 s"
    assert format_wait(5 * 3600 + 12 * 60) == "5 h 12 min"
