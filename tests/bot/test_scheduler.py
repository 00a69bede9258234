"""The fair queue: round-robin between users, per-provider slots, honest positions."""

from __future__ import annotations

import random

from bot.jobs import Job, Origin
from bot.request import GenerationRequest
from bot.scheduler import FairQueue


def job(user: str, n: int, provider: str = "p", platform: str = "web") -> Job:
    origin = Origin(platform=platform, server_id="s", channel_id="c", user_id=user)
    return Job(id=f"{user}-{n}", origin=origin, request=GenerationRequest(prompt="x"), provider=provider)


def drain(queue: FairQueue) -> list[str]:
    order = []
    while (j := queue.pop_ready()) is not None:
        order.append(j.id)
        queue.release(j)
    return order


def test_a_flood_delays_a_newcomer_by_at_most_one_slot() -> None:
    queue = FairQueue({"p": 1})
    for i in range(500):
        queue.push(job("flood", i))
    first = queue.pop_ready()
    assert first is not None and first.id == "flood-0"
    for u in range(20):
        queue.push(job(f"u{u}", 0))
    queue.release(first)
    order = drain(queue)
    for u in range(20):
        started_at = order.index(f"u{u}-0")
        flood_before = sum(1 for x in order[:started_at] if x.startswith("flood"))
        assert flood_before <= 1, (u, flood_before)


def test_each_users_jobs_run_in_the_order_they_asked() -> None:
    queue = FairQueue({"p": 2})
    rng = random.Random(4)
    pushed: dict[str, list[str]] = {}
    for i in range(300):
        user = f"u{rng.randrange(7)}"
        j = job(user, i)
        pushed.setdefault(user, []).append(j.id)
        queue.push(j)
    order = drain(queue)
    for user, ids in pushed.items():
        assert [x for x in order if x.startswith(user + "-")] == ids


def test_a_provider_never_runs_more_than_its_slots() -> None:
    queue = FairQueue({"slow": 2, "fast": 3})
    for i in range(10):
        queue.push(job(f"a{i}", i, "slow"))
        queue.push(job(f"b{i}", i, "fast"))
    started = []
    while (j := queue.pop_ready()) is not None:
        started.append(j)
    assert sum(1 for j in started if j.provider == "slow") == 2
    assert sum(1 for j in started if j.provider == "fast") == 3
    queue.release(started[0])
    nxt = queue.pop_ready()
    assert nxt is not None and nxt.provider == started[0].provider


def test_a_user_at_their_running_limit_is_skipped_not_blocking_others() -> None:
    queue = FairQueue({"p": 4}, max_running_per_user=lambda key: 1)
    for i in range(3):
        queue.push(job("greedy", i))
    queue.push(job("other", 0))
    first = queue.pop_ready()
    second = queue.pop_ready()
    assert first is not None and second is not None
    assert {first.id, second.id} == {"greedy-0", "other-0"}
    assert queue.pop_ready() is None  # greedy has one running already
    queue.release(first)
    third = queue.pop_ready()
    assert third is not None and third.id == "greedy-1"


def test_positions_match_the_order_jobs_actually_start() -> None:
    queue = FairQueue({"p": 1})
    rng = random.Random(9)
    for i in range(200):
        queue.push(job(f"u{rng.randrange(12)}", i))
    predicted = {j.id: place.position for j, place in queue.all_places()}
    assert sorted(predicted.values()) == list(range(1, 201))
    for job_id, position in predicted.items():
        single = queue.place(job_id)
        assert single is not None and single.position == position
    order = drain(queue)
    assert [predicted[x] for x in order] == list(range(1, 201))


def test_single_job_position_and_removal() -> None:
    queue = FairQueue({"p": 1})
    for i in range(3):
        queue.push(job("a", i))
    queue.push(job("b", 0))
    place = queue.place("b-0")
    assert place is not None and place.position == 2
    assert queue.remove("a-0") is not None
    assert "a-0" not in queue
    assert queue.queued_for(("web", "a")) == 2
    place = queue.place("b-0")
    assert place is not None and place.position == 2 and place.lane_length == 3
    assert queue.remove("missing") is None


def test_retry_goes_to_the_front_of_its_users_line() -> None:
    queue = FairQueue({"p": 1})
    queue.push(job("a", 1))
    retried = job("a", 0)
    queue.push(retried, front=True)
    assert drain(queue) == ["a-0", "a-1"]
