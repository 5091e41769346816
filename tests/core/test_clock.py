from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import ClockError, LiveClock, ReplayClock

T = datetime(2024, 1, 1, tzinfo=UTC)


def test_replay_clock_fires_due_timers_in_time_order_and_sets_now() -> None:
    clock = ReplayClock(T)
    fired: list[tuple[str, datetime, datetime]] = []
    clock.schedule_every(
        timedelta(minutes=10), lambda now: fired.append(("every", now, clock.now()))
    )
    clock.schedule_at(T + timedelta(minutes=15), lambda now: fired.append(("at", now, clock.now())))
    clock.advance_to(T + timedelta(minutes=30))
    assert [(kind, now - T) for kind, now, _ in fired] == [
        ("every", timedelta(minutes=10)),
        ("at", timedelta(minutes=15)),
        ("every", timedelta(minutes=20)),
        ("every", timedelta(minutes=30)),
    ]
    assert all(now == seen for _, now, seen in fired)
    assert clock.now() == T + timedelta(minutes=30)


def test_replay_clock_refuses_to_go_backwards() -> None:
    clock = ReplayClock(T)
    clock.advance_to(T + timedelta(seconds=5))
    with pytest.raises(ClockError, match="backwards"):
        clock.advance_to(T)


def test_cancelled_timer_does_not_fire() -> None:
    clock = ReplayClock(T)
    fired: list[datetime] = []
    timer = clock.schedule_every(timedelta(seconds=1), fired.append)
    clock.advance_to(T + timedelta(seconds=2))
    timer.cancel()
    clock.advance_to(T + timedelta(seconds=5))
    assert len(fired) == 2


async def test_live_clock_timers_run_on_the_loop() -> None:
    clock = LiveClock()
    fired: list[datetime] = []
    timer = clock.schedule_every(timedelta(milliseconds=20), fired.append)
    once: list[datetime] = []
    clock.schedule_at(clock.now() + timedelta(milliseconds=30), once.append)
    await asyncio.sleep(0.13)
    timer.cancel()
    assert 4 <= len(fired) <= 7
    assert len(once) == 1
    assert abs((clock.now() - datetime.now(UTC)).total_seconds()) < 1
