"""The edit throttle, driven by a FakeClock: every send is recorded with the fake time it happened at."""

from __future__ import annotations

import asyncio
import logging
import random
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from bot.clock import FakeClock
from bot.surface import DISCORD_THROTTLE, SLACK_THROTTLE, WEB_THROTTLE, ThrottlePolicy
from bot.throttle import EditThrottle

EPS = 1e-9
DISCORD = DISCORD_THROTTLE  # 1 edit per message per 2 s, 4 edits per 5 s per channel


@dataclass
class Sent:
    at: float
    scope: str
    message: str
    frame: int | str


@dataclass
class Recorder:
    """Records what a user would see: which frame of which card was shown, and when."""

    clock: FakeClock
    sends: list[Sent] = field(default_factory=list)

    def frame(
        self, scope: str, message: str, frame: int | str, *, fail: bool = False
    ) -> Callable[[], Awaitable[None]]:
        async def send() -> None:
            self.sends.append(Sent(self.clock.monotonic(), scope, message, frame))
            if fail:
                raise RuntimeError(f"edit of {message} refused")

        return send

    def of(self, message: str) -> list[Sent]:
        return [s for s in self.sends if s.message == message]

    def shown(self, message: str) -> int | str:
        return self.of(message)[-1].frame


def check_bounds(sends: list[Sent], policy: ThrottlePolicy) -> None:
    """(a) per message spacing and (b) the sliding window per scope, over every recorded send."""
    by_message: dict[tuple[str, str], list[float]] = defaultdict(list)
    by_scope: dict[str, list[float]] = defaultdict(list)
    for s in sends:
        by_message[(s.scope, s.message)].append(s.at)
        by_scope[s.scope].append(s.at)
    for key, times in by_message.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(g >= policy.per_message_seconds - EPS for g in gaps), (key, min(gaps))
    k = policy.window_edits
    for scope, times in by_scope.items():
        times.sort()
        for i in range(len(times) - k):
            assert times[i + k] - times[i] >= policy.window_seconds - EPS, (scope, times[i : i + k + 1])


async def run_until(
    clock: FakeClock, done: Callable[[], bool], *, step: float = 0.25, limit: float = 600.0
) -> float:
    start = clock.monotonic()
    while not done():
        assert clock.monotonic() - start < limit, "the throttle never finished"
        await clock.advance(step)
    return clock.monotonic() - start


# --- the long randomized run --------------------------------------------------------------------


@dataclass
class Job:
    scope: str
    name: str
    start: float
    frames: list[float]  # offer times of progress frames (frame i offered at frames[i])
    end: float  # when the final is offered
    final_task: asyncio.Task[None] | None = None
    final_sent_at: float | None = None


def schedule(rng: random.Random, scopes: dict[str, int], base: float) -> list[Job]:
    jobs = []
    for scope, count in scopes.items():
        for i in range(count):
            start = base + rng.uniform(0, 20)
            t, frames = start, []
            for _ in range(rng.randint(0, 120)):
                frames.append(t)
                t += rng.choice([0.05, 0.1, 0.3, 0.5, 1.0, 2.5])
            jobs.append(Job(scope, f"{scope}/job{i}", start, frames, t + rng.uniform(0, 1)))
    return jobs


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "policy", [DISCORD_THROTTLE, SLACK_THROTTLE, WEB_THROTTLE], ids=["discord", "slack", "web"]
)
async def test_busy_channels_stay_within_limits_and_every_card_ends_at_100_percent(
    policy: ThrottlePolicy, seed: int
) -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(policy, clock)
    rng = random.Random(seed)
    jobs = schedule(rng, {"busy": 20, "quiet": 3, "other": 6}, clock.monotonic())
    events: list[tuple[float, int, Job, int]] = []
    for j, job in enumerate(jobs):
        events += [(t, j, job, i) for i, t in enumerate(job.frames)]
        events.append((job.end, j, job, -1))
    events.sort(key=lambda e: (e[0], e[1], e[3] if e[3] >= 0 else 10**9))

    for at, _, job, i in events:
        await clock.advance(max(0.0, at - clock.monotonic()))
        if i >= 0:
            throttle.update(job.name, job.scope, rec.frame(job.scope, job.name, i))
        else:
            last = rec.frame(job.scope, job.name, "100%")
            job.final_task = asyncio.create_task(throttle.final(job.name, job.scope, last))
    await run_until(clock, lambda: all(j.final_task is not None and j.final_task.done() for j in jobs))

    check_bounds(rec.sends, policy)
    n_busy = 20
    # With at most n messages in a scope, a waiting frame has at most n - 1 ordinary frames and n - 1
    # finals ahead of it, plus its own per-message spacing.
    rounds = 2 * n_busy / policy.window_edits
    bound = rounds * policy.window_seconds + policy.per_message_seconds
    for job in jobs:
        sent = rec.of(job.name)
        assert sent[-1].frame == "100%", job.name  # the last card shows 100 %
        assert [s.frame for s in sent].count("100%") == 1
        progress = [s.frame for s in sent[:-1]]
        assert all(isinstance(f, int) for f in progress)
        assert progress == sorted(set(progress), key=int), "frames go forward, never back"
        assert sent[-1].at - job.end <= bound, (job.name, sent[-1].at - job.end)
        # no starvation: every frame offered is followed by a send of that card (this frame or newer)
        for offered in job.frames:
            first_after = min(s.at for s in sent if s.at >= offered - EPS)
            assert first_after - offered <= bound, (job.name, offered, first_after)
    assert throttle.stats.failed == 0
    assert throttle.stats.sent == len(rec.sends)
    offered = sum(len(j.frames) + 1 for j in jobs)
    assert throttle.stats.sent + throttle.stats.skipped == offered


async def test_a_saturated_channel_uses_its_whole_allowance() -> None:
    """Twenty jobs in one Discord channel: edits flow at the limit (4 per 5 s), not below it."""
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    for tick in range(600):  # 60 s, every job reports progress every 0.1 s
        for j in range(20):
            throttle.update(f"job{j}", "chan", rec.frame("chan", f"job{j}", tick))
        await clock.advance(0.1)
    check_bounds(rec.sends, DISCORD)
    assert len(rec.sends) >= 4 * (60 // 5)
    per_job: dict[str, int] = defaultdict(int)
    for s in rec.sends:
        per_job[s.message] += 1
    assert min(per_job.values()) >= 2, "round robin: every card moved at least twice a minute"
    assert max(per_job.values()) - min(per_job.values()) <= 1, "no card gets more than its share"
    await throttle.aclose()


# --- single behaviours --------------------------------------------------------------------------


async def test_latest_frame_wins_and_the_first_edit_is_immediate() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    t0 = clock.monotonic()
    for pct in range(0, 100, 5):  # 20 frames over 4 s
        throttle.update("card", "chan", rec.frame("chan", "card", pct))
        await clock.advance(0.2)
    await clock.advance(1.0)
    # at 2 s the card shows the newest frame offered by then (45 %, offered at 1.8 s), not 5 %
    assert [(round(s.at - t0, 6), s.frame) for s in rec.sends] == [(0.0, 0), (2.0, 45), (4.0, 95)]
    assert throttle.stats.skipped == 17
    final = asyncio.create_task(throttle.final("card", "chan", rec.frame("chan", "card", "100%")))
    await clock.advance(0.9)  # offered at 5 s, 1 s after the last edit: it waits out the 2 s spacing
    assert not final.done()
    await clock.advance(0.1)
    assert final.done() and rec.shown("card") == "100%"
    assert rec.sends[-1].at - t0 == pytest.approx(6.0)  # waited out its 2 s spacing


async def test_final_waits_its_turn_in_a_full_window_but_goes_before_progress_frames() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    t0 = clock.monotonic()
    for j in range(9):
        throttle.update(f"job{j}", "chan", rec.frame("chan", f"job{j}", 0))
    await clock.advance(4.0)
    # progress is spread out (one edit per 1.25 s), and the window (4 per 5 s) is now full until t0 + 5
    assert [round(s.at - t0, 6) for s in rec.sends] == [0.0, 1.25, 2.5, 3.75]
    final = asyncio.create_task(throttle.final("job0", "chan", rec.frame("chan", "job0", "100%")))
    await clock.advance(0.9)
    assert not final.done()
    await clock.advance(0.1)  # t0 + 5: the first free slot goes to the final, before five waiting cards
    assert final.done()
    assert (rec.sends[4].message, rec.sends[4].frame) == ("job0", "100%")
    assert rec.sends[4].at - t0 == pytest.approx(5.0)
    await run_until(clock, lambda: all(rec.of(f"job{j}") for j in range(9)))
    check_bounds(rec.sends, DISCORD)


async def test_finals_are_not_held_back_by_the_progress_pacing() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    finals = [
        asyncio.create_task(throttle.final(f"job{j}", "chan", rec.frame("chan", f"job{j}", "100%")))
        for j in range(4)
    ]
    await clock.advance(0.0)
    assert all(f.done() for f in finals)
    assert [s.at for s in rec.sends] == [clock.monotonic()] * 4  # 4 finished cards at once: within 4 per 5 s


async def test_a_busy_slack_workspace_never_freezes_and_finished_cards_show_up_fast() -> None:
    """Slack allows 40 edits a minute per workspace: spent evenly, not in a burst then a minute of silence."""
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(SLACK_THROTTLE, clock)
    finals: list[tuple[float, asyncio.Task[None]]] = []
    for tick in range(1800):  # three minutes; 30 jobs report every 0.1 s, one finishes every 6 s
        for j in range(30):
            if f"job{j}" not in {t.get_name() for _, t in finals}:
                throttle.update(f"job{j}", "team", rec.frame("team", f"job{j}", tick))
        if tick % 60 == 59:
            j = len(finals)
            last = rec.frame("team", f"job{j}", "100%")
            task = asyncio.create_task(throttle.final(f"job{j}", "team", last))
            task.set_name(f"job{j}")
            finals.append((clock.monotonic(), task))
        await clock.advance(0.1)
    await run_until(clock, lambda: all(t.done() for _, t in finals))
    check_bounds(rec.sends, SLACK_THROTTLE)
    busy_until = finals[-5][0]  # while five or more jobs are still running
    times = [s.at for s in rec.sends if s.at <= busy_until]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # Progress goes out every 1.5 s; finals borrow slots from it, so the window can fill up for a few
    # seconds, never for the better part of a minute (which is what an unpaced burst of 40 edits does).
    assert sorted(gaps)[len(gaps) // 2] == pytest.approx(1.5)
    assert max(gaps) <= 5 * 1.5
    for offered, task in finals:
        shown = [s.at for s in rec.of(task.get_name()) if s.frame == "100%"]
        assert shown and shown[0] - offered <= 5 * 1.5  # seconds, not the ~50 s of an unpaced throttle
    await throttle.aclose()


async def test_many_finals_in_a_saturated_channel_are_all_delivered_in_bounded_time() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    finals = [
        asyncio.create_task(throttle.final(f"job{j}", "chan", rec.frame("chan", f"job{j}", "100%")))
        for j in range(20)
    ]
    for tick in range(10):
        for j in range(20, 30):
            throttle.update(f"job{j}", "chan", rec.frame("chan", f"job{j}", tick))
        await clock.advance(1.0)
    took = await run_until(clock, lambda: all(f.done() for f in finals)) + 10.0
    assert took <= 25.0 + EPS  # 20 finals at 4 per 5 s, ahead of every progress frame
    assert all(s.frame == "100%" for s in rec.sends[:20])
    check_bounds(rec.sends, DISCORD)
    await throttle.aclose()


async def test_frames_after_the_final_never_overwrite_it() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    throttle.update("card", "chan", rec.frame("chan", "card", 90))
    final = asyncio.create_task(throttle.final("card", "chan", rec.frame("chan", "card", "100%")))
    await clock.advance(0.5)
    throttle.update("card", "chan", rec.frame("chan", "card", 95))  # a late progress callback
    await clock.advance(2.0)
    assert final.done()
    throttle.update("card", "chan", rec.frame("chan", "card", 99))
    await clock.advance(10.0)
    assert [s.frame for s in rec.sends] == [90, "100%"]
    assert throttle.stats.skipped == 2


async def test_a_failing_edit_is_logged_and_the_card_keeps_updating(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    throttle.update("card", "chan", rec.frame("chan", "card", 10, fail=True))
    with caplog.at_level(logging.ERROR, logger="bot.throttle"):
        await clock.advance(0.0)
    assert throttle.stats.failed == 1
    assert any("card" in r.getMessage() and r.exc_info for r in caplog.records)
    throttle.update("card", "chan", rec.frame("chan", "card", 20))
    await clock.advance(2.0)
    assert rec.shown("card") == 20  # not retried: the next frame went out instead
    assert [s.frame for s in rec.sends] == [10, 20]

    with pytest.raises(RuntimeError, match="edit of card refused"):
        await asyncio.gather(
            throttle.final("card", "chan", rec.frame("chan", "card", "100%", fail=True)), clock.advance(2.0)
        )
    assert throttle.stats.failed == 2
    other = rec.frame("chan", "other", "100%")
    await asyncio.gather(throttle.final("other", "chan", other), clock.advance(5.0))
    assert rec.shown("other") == "100%"


async def test_scopes_are_independent() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    for j in range(6):
        throttle.update(f"a/job{j}", "chan-a", rec.frame("chan-a", f"a/job{j}", 0))
    for j in range(2):
        throttle.update(f"b/job{j}", "chan-b", rec.frame("chan-b", f"b/job{j}", 0))
    await clock.advance(3.75)
    a = [s.at for s in rec.sends if s.scope == "chan-a"]
    b = [s.at for s in rec.sends if s.scope == "chan-b"]
    assert len(a) == 4 and b == a[:2]  # a busy channel does not slow down the quiet one
    await throttle.aclose()


async def test_an_idle_throttle_holds_no_tasks_or_state() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    for j in range(5):
        throttle.update(f"job{j}", f"chan{j % 2}", rec.frame(f"chan{j % 2}", f"job{j}", 0))
    finals = [
        asyncio.create_task(
            throttle.final(f"job{j}", f"chan{j % 2}", rec.frame(f"chan{j % 2}", f"job{j}", "100%"))
        )
        for j in range(5)
    ]
    await run_until(clock, lambda: all(f.done() for f in finals))
    assert throttle.active_scopes == 2  # still ignoring late frames for the finished cards
    await clock.advance(31.0)
    assert throttle.active_scopes == 0
    assert clock.sleepers == 0
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("edit-throttle")]


async def test_a_caller_giving_up_does_not_cancel_the_final_edit() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    throttle.update("card", "chan", rec.frame("chan", "card", 50))
    await clock.advance(0.0)
    waiter = asyncio.create_task(throttle.final("card", "chan", rec.frame("chan", "card", "100%")))
    await clock.advance(0.5)
    waiter.cancel()
    await clock.advance(2.0)
    assert rec.shown("card") == "100%"


async def test_close_drops_progress_but_delivers_finals() -> None:
    clock = FakeClock()
    rec = Recorder(clock)
    throttle = EditThrottle(DISCORD, clock)
    throttle.update("a", "chan", rec.frame("chan", "a", 1))
    throttle.update("b", "chan", rec.frame("chan", "b", 1))
    await clock.advance(0.0)
    throttle.update("a", "chan", rec.frame("chan", "a", 2))
    final = asyncio.create_task(throttle.final("b", "chan", rec.frame("chan", "b", "100%")))
    await clock.advance(0.0)
    closing = asyncio.create_task(throttle.aclose())
    await clock.advance(2.0)
    await closing
    assert final.done() and rec.shown("b") == "100%"
    assert rec.shown("a") == 1
    assert throttle.active_scopes == 0
    throttle.update("a", "chan", rec.frame("chan", "a", 3))
    with pytest.raises(RuntimeError):
        await throttle.final("a", "chan", rec.frame("chan", "a", "100%"))


async def test_close_lets_a_final_edit_in_flight_finish() -> None:
    clock = FakeClock()
    shown: list[str] = []

    async def slow_final() -> None:
        await clock.sleep(1.0)  # the platform takes a second to answer
        shown.append("100%")

    throttle = EditThrottle(DISCORD, clock)
    final = asyncio.create_task(throttle.final("card", "chan", slow_final))
    await clock.advance(0.5)
    closing = asyncio.create_task(throttle.aclose())
    await clock.advance(1.0)
    await closing
    assert final.done() and not final.cancelled()
    assert shown == ["100%"]
