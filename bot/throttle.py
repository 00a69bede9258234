"""The progress-edit throttle: coalesces card edits so a surface stays inside its platform's limits.

Rules (per :class:`~bot.surface.ThrottlePolicy`):

* at most one send per message every ``per_message_seconds`` (a message's first send may go at once);
* at most ``window_edits`` sends per scope in any sliding ``window_seconds``;
* the latest frame wins: a frame not yet sent is replaced, never queued behind the new one;
* a final frame is never dropped, goes before ordinary frames of its scope, and once it is offered
  the message takes no more ordinary frames;
* among waiting messages the one that has waited longest goes first, so none starves;
* ordinary frames are also spread out, no closer than ``window_seconds / window_edits`` in a scope:
  a burst of progress cannot use up the whole window and freeze every card of the scope (40 Slack
  edits in the first seconds, then a minute of silence), and a final rarely finds the window full.
  Finals are held only by the first two rules.

Design: one scheduler task per *active* scope. It sleeps on the injected clock until the next send
is allowed (or until a new message or a final arrives, which cancels its nap), sends one frame, and
repeats. Sends in a scope are serialised. When nothing is pending it lingers until the window and
the late-update grace period have run out, then drops all state of the scope and exits, so an idle
throttle holds no task and no memory.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bot.clock import Clock
from bot.surface import ThrottlePolicy

log = logging.getLogger(__name__)

Send = Callable[[], Awaitable[None]]

#: How long after its final a message keeps ignoring late ordinary frames (a progress callback
#: that fires after the job finished must not overwrite the final card).
LATE_UPDATE_GRACE_SECONDS = 30.0


@dataclass
class ThrottleStats:
    """Counters: frames sent, frames dropped unsent, sends that raised."""

    sent: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass(eq=False)
class _Message:
    key: str
    seq: int
    frame: Send | None = None
    final: bool = False
    #: When the current frame first became pending; replacing the frame keeps this time.
    waiting_since: float = 0.0
    last_sent: float = -math.inf
    done: asyncio.Future[None] | None = None
    #: Bumped whenever the message's place in the scheduling heaps changes; older entries are stale.
    version: int = 0


@dataclass(eq=False)
class _Scope:
    key: str
    sent: deque[float]
    messages: dict[str, _Message] = field(default_factory=dict)
    #: Finished messages and when their final was sent (kept for the late-update grace period).
    finished: dict[str, float] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None
    nap: asyncio.Task[None] | None = None
    #: Messages with a frame whose per-message interval has passed, best first (finals, then the
    #: longest wait); and those still inside it, by when it ends. Entries go stale, never move.
    ready: list[tuple[tuple[bool, float, int], int, _Message]] = field(default_factory=list)
    waiting: list[tuple[float, int, int, _Message]] = field(default_factory=list)
    #: The message whose frame is being sent right now.
    sending: _Message | None = None

    def wake(self) -> None:
        if self.nap is not None and not self.nap.done():
            self.nap.cancel()


class EditThrottle:
    """Throttles edits of progress messages; see the module docstring for the guarantees."""

    def __init__(
        self, policy: ThrottlePolicy, clock: Clock, *, late_update_grace: float = LATE_UPDATE_GRACE_SECONDS
    ) -> None:
        if policy.window_edits < 1 or policy.window_seconds < 0 or policy.per_message_seconds < 0:
            raise ValueError(f"unusable throttle policy: {policy}")
        self._policy = policy
        self._clock = clock
        self._grace = late_update_grace
        self._scopes: dict[str, _Scope] = {}
        self._seq = itertools.count()
        self._closed = False
        self.stats = ThrottleStats()

    @property
    def active_scopes(self) -> int:
        """Scopes with a running scheduler (and so with state in memory)."""
        return len(self._scopes)

    def update(self, message_key: str, scope_key: str, send: Send) -> None:
        """Offer a new frame for a message; replaces any of its frames not yet sent. Never blocks."""
        if self._closed:
            self.stats.skipped += 1
            return
        scope = self._scope(scope_key)
        msg = scope.messages.get(message_key)
        if message_key in scope.finished or (msg is not None and msg.final):
            self.stats.skipped += 1  # the final state is shown (or on its way); this frame is stale
            return
        if msg is None:
            msg = scope.messages[message_key] = _Message(message_key, next(self._seq))
        if self._offer(msg, send):
            self._schedule(scope, msg)
            scope.wake()

    async def final(self, message_key: str, scope_key: str, send: Send) -> None:
        """Send a message's final frame: it replaces a pending frame and is never dropped.

        Returns once ``send`` has run; an exception it raised is raised here. Afterwards ordinary
        frames for the message are ignored. A second ``final`` sends again (once allowed).
        """
        if self._closed:
            raise RuntimeError("the edit throttle is closed")
        scope = self._scope(scope_key)
        msg = scope.messages.get(message_key)
        if msg is None:
            msg = scope.messages[message_key] = _Message(message_key, next(self._seq))
            msg.last_sent = scope.finished.pop(message_key, -math.inf)
        self._offer(msg, send)
        msg.final = True
        self._schedule(scope, msg)  # its rank changed: finals go first
        if msg.done is None:
            msg.done = asyncio.get_running_loop().create_future()
        scope.wake()  # a final goes before ordinary frames: let the scheduler choose again
        # Shielded: a caller that gives up waiting must not cancel the final edit itself.
        await asyncio.shield(msg.done)

    async def aclose(self) -> None:
        """Drop ordinary frames not yet sent, wait for pending finals, then stop every scheduler."""
        self._closed = True
        finals: list[asyncio.Future[None]] = []
        for scope in self._scopes.values():
            for msg in [*scope.messages.values(), *([scope.sending] if scope.sending else [])]:
                if msg.final and msg.done is not None:
                    finals.append(msg.done)
                elif msg.frame is not None:
                    msg.frame = None
                    self.stats.skipped += 1
            scope.wake()
        await asyncio.gather(*(asyncio.shield(f) for f in finals), return_exceptions=True)
        tasks = [s.task for s in self._scopes.values() if s.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- internals ----------------------------------------------------------------------------

    def _scope(self, scope_key: str) -> _Scope:
        scope = self._scopes.get(scope_key)
        if scope is None:
            scope = _Scope(scope_key, deque(maxlen=self._policy.window_edits))
            self._scopes[scope_key] = scope
            scope.task = asyncio.get_running_loop().create_task(
                self._run(scope), name=f"edit-throttle:{scope_key}"
            )
        return scope

    def _offer(self, msg: _Message, send: Send) -> bool:
        """Make ``send`` the message's pending frame; True when the message was not waiting before."""
        if msg.frame is not None:
            self.stats.skipped += 1
            msg.frame = send
            return False
        msg.frame = send
        msg.waiting_since = self._clock.monotonic()
        return True

    async def _run(self, scope: _Scope) -> None:
        try:
            while True:
                now = self._clock.monotonic()
                msg, wake_at = self._plan(scope, now)
                if msg is not None:
                    await self._send(scope, msg, now)
                elif wake_at is None:
                    return
                else:
                    await self._nap(scope, wake_at - now)
        finally:
            # No await between the last plan and here: an update cannot slip in unseen.
            if self._scopes.get(scope.key) is scope:
                del self._scopes[scope.key]
            for msg in scope.messages.values():
                if msg.done is not None and not msg.done.done():
                    msg.done.cancel()

    def _schedule(self, scope: _Scope, msg: _Message) -> None:
        """(Re)enter a message with a pending frame into the heaps."""
        msg.version += 1
        ready_at = msg.last_sent + self._policy.per_message_seconds
        if ready_at <= self._clock.monotonic():
            heapq.heappush(scope.ready, (_rank(msg), msg.version, msg))
        else:
            heapq.heappush(scope.waiting, (ready_at, msg.seq, msg.version, msg))

    def _plan(self, scope: _Scope, now: float) -> tuple[_Message | None, float | None]:
        """The message to send now, or else when to look again (None: nothing left, exit).

        O(log n) per send: heaps, not a scan, so a channel with thousands of waiting cards costs
        no more per edit than one with a few.
        """
        policy = self._policy
        window, edits = policy.window_seconds, policy.window_edits
        window_at = scope.sent[0] + window if len(scope.sent) == edits else -math.inf
        pace_at = scope.sent[-1] + window / edits if scope.sent else -math.inf
        while scope.waiting and scope.waiting[0][0] <= now:
            _, _, version, msg = heapq.heappop(scope.waiting)
            if _live(scope, msg, version):
                heapq.heappush(scope.ready, (_rank(msg), version, msg))
        while scope.ready and not _live(scope, scope.ready[0][2], scope.ready[0][1]):
            heapq.heappop(scope.ready)
        while scope.waiting and not _live(scope, scope.waiting[0][3], scope.waiting[0][2]):
            heapq.heappop(scope.waiting)
        next_waiting = scope.waiting[0][0] if scope.waiting else math.inf
        if scope.ready:
            best = scope.ready[0][2]
            if best.final or pace_at <= now:
                if window_at > now:
                    return None, window_at
                heapq.heappop(scope.ready)
                return best, None
            # The best is an ordinary frame held by pacing; a final may become ready before that.
            return None, max(min(pace_at, next_waiting), window_at)
        if next_waiting < math.inf:
            return None, max(next_waiting, window_at)
        return None, self._linger_until(scope, now)

    def _linger_until(self, scope: _Scope, now: float) -> float | None:
        keep = max(self._grace, self._policy.per_message_seconds)
        for key in [k for k, sent_at in scope.finished.items() if sent_at + keep <= now]:
            del scope.finished[key]
        times = [sent_at + keep for sent_at in scope.finished.values()]
        if scope.sent:
            times.append(scope.sent[-1] + max(self._policy.window_seconds, self._policy.per_message_seconds))
        until = max(times, default=-math.inf)
        return until if until > now else None

    async def _send(self, scope: _Scope, msg: _Message, now: float) -> None:
        send, msg.frame = msg.frame, None
        assert send is not None
        scope.sent.append(now)
        msg.last_sent = now
        is_final = msg.final
        if is_final:
            # Forget the message before sending, so a final() during the send starts afresh.
            del scope.messages[msg.key]
            scope.finished[msg.key] = now
        scope.sending = msg
        try:
            await send()
        except asyncio.CancelledError:
            if is_final and msg.done is not None and not msg.done.done():
                msg.done.cancel()
            raise
        except Exception as exc:
            self.stats.failed += 1
            if not is_final:
                log.exception("progress edit of %s in %s failed (not retried)", msg.key, scope.key)
            elif msg.done is not None and not msg.done.done():
                msg.done.set_exception(exc)
            return
        finally:
            scope.sending = None
        self.stats.sent += 1
        if is_final and msg.done is not None and not msg.done.done():
            msg.done.set_result(None)

    async def _nap(self, scope: _Scope, seconds: float) -> None:
        """Sleep on the clock; :meth:`_Scope.wake` cuts it short."""
        scope.nap = asyncio.ensure_future(self._clock.sleep(seconds))
        try:
            await asyncio.wait([scope.nap])
        finally:
            scope.nap.cancel()
            scope.nap = None


def _live(scope: _Scope, msg: _Message, version: int) -> bool:
    return msg.frame is not None and msg.version == version and scope.messages.get(msg.key) is msg


def _rank(msg: _Message) -> tuple[bool, float, int]:
    # Finals first, then the message that has waited longest.
    return (not msg.final, msg.waiting_since, msg.seq)
