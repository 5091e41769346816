"""Injected clocks: the only place lorabot reads the time.

Engine, strategy, risk gate and brokers ask a `Clock` for "now" and for timers. `LiveClock` reads
the system clock and runs timers on the asyncio loop; `ReplayClock` holds "now", advances to each
replayed event's timestamp, fires the timers that fell due on the way in time order, and refuses
to go backwards. That is what makes a backtest deterministic and a replayed scenario comparable
with a live one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

TimerCallback = Callable[[datetime], None]


class ClockError(Exception):
    pass


class Timer(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> datetime: ...

    def schedule_every(
        self, interval: timedelta, callback: TimerCallback, name: str = ""
    ) -> Timer: ...

    def schedule_at(self, when: datetime, callback: TimerCallback, name: str = "") -> Timer: ...


@dataclass(order=True, slots=True)  # slots: `heap[0].due` is read for every replayed event
class _Entry:
    due: datetime
    seq: int
    callback: TimerCallback = field(compare=False)
    interval: timedelta | None = field(compare=False, default=None)
    name: str = field(compare=False, default="")
    cancelled: bool = field(compare=False, default=False)

    def cancel(self) -> None:
        self.cancelled = True


class ReplayClock:
    """Time that moves only when the replay says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start
        self._heap: list[_Entry] = []
        self._seq = itertools.count()

    @property
    def started(self) -> bool:
        return self._now is not None

    def now(self) -> datetime:
        if self._now is None:
            raise ClockError("the replay clock has not been set to a first event yet")
        return self._now

    def monotonic(self) -> float:
        """Seconds on a steady scale for measuring intervals: replay time, so a replay's
        latencies are as deterministic as the rest of it (zero: nothing waits in a replay)."""
        return self.now().timestamp()

    def advance_to(self, when: datetime) -> None:
        """Move to `when`, firing every timer due up to and including it, in time order."""
        now = self._now
        if now is not None and when < now:
            raise ClockError(f"the replay clock cannot go backwards: {when} is before {now}")
        heap = self._heap
        if not heap or heap[0].due > when:
            self._now = when
            return
        while heap and heap[0].due <= when:
            entry = heapq.heappop(heap)
            if entry.cancelled:
                continue
            self._now = entry.due
            if entry.interval is not None:
                entry.due = entry.due + entry.interval
                entry.seq = next(self._seq)
                heapq.heappush(heap, entry)
            entry.callback(self._now)
        self._now = when

    def next_due(self) -> datetime | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    def schedule_every(
        self, interval: timedelta, callback: TimerCallback, name: str = ""
    ) -> _Entry:
        if interval <= timedelta(0):
            raise ClockError(f"timer {name or callback!r}: interval must be positive")
        start = self.now()
        entry = _Entry(start + interval, next(self._seq), callback, interval, name)
        heapq.heappush(self._heap, entry)
        return entry

    def schedule_at(self, when: datetime, callback: TimerCallback, name: str = "") -> _Entry:
        entry = _Entry(when, next(self._seq), callback, None, name)
        heapq.heappush(self._heap, entry)
        return entry


class _LiveTimer:
    def __init__(self) -> None:
        self.handle: asyncio.TimerHandle | None = None
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
        if self.handle is not None:
            self.handle.cancel()


class LiveClock:
    """The system clock, with timers on the running asyncio loop.

    `offset` lets a venue adapter correct for a measured skew (positive: the venue is ahead).
    """

    def __init__(self, offset: timedelta = timedelta(0)) -> None:
        self.offset = offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(time.time(), UTC) + self.offset

    def monotonic(self) -> float:
        """Seconds on a steady, high-resolution scale (`time.perf_counter`) for measuring
        latencies: never moved by a clock step or `offset`, comparable with a benchmark's own
        `perf_counter` readings in the same process."""
        return time.perf_counter()

    def schedule_every(
        self, interval: timedelta, callback: TimerCallback, name: str = ""
    ) -> _LiveTimer:
        if interval <= timedelta(0):
            raise ClockError(f"timer {name or callback!r}: interval must be positive")
        loop = asyncio.get_running_loop()
        timer = _LiveTimer()
        seconds = interval.total_seconds()
        start = loop.time()

        def fire(n: int) -> None:
            if timer.cancelled:
                return
            try:
                callback(self.now())
            finally:
                if not timer.cancelled:
                    # Anchor to the start so that a slow callback does not make the timer drift.
                    due = start + seconds * (n + 1)
                    timer.handle = loop.call_at(max(due, loop.time()), fire, n + 1)

        timer.handle = loop.call_at(start + seconds, fire, 1)
        return timer

    def schedule_at(self, when: datetime, callback: TimerCallback, name: str = "") -> _LiveTimer:
        loop = asyncio.get_running_loop()
        timer = _LiveTimer()
        delay = max(0.0, (when - self.now()).total_seconds())

        def fire() -> None:
            if not timer.cancelled:
                callback(self.now())

        timer.handle = loop.call_later(delay, fire)
        return timer
