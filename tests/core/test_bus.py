from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from bot.bus import Bus


@dataclass(frozen=True)
class A:
    n: int


@dataclass(frozen=True)
class B:
    n: int


def test_nested_publishes_are_queued_fifo_not_recursive() -> None:
    bus = Bus()
    seen: list[str] = []
    bus.subscribe(
        A, lambda e: (seen.append(f"A{e.n}"), bus.publish(B(e.n)), bus.publish(B(e.n + 10)))
    )
    bus.subscribe(A, lambda e: seen.append(f"A{e.n}'"))
    bus.subscribe(B, lambda e: seen.append(f"B{e.n}"))
    bus.publish(A(1))
    assert seen == ["A1", "A1'", "B1", "B11"]


def test_strict_bus_raises_and_lenient_bus_counts() -> None:
    def boom(_: A) -> None:
        raise ValueError("bad")

    strict = Bus(strict=True)
    strict.subscribe(A, boom)
    with pytest.raises(ValueError):
        strict.publish(A(1))
    lenient = Bus(strict=False)
    seen: list[int] = []
    lenient.subscribe(A, boom)
    lenient.subscribe(A, lambda e: seen.append(e.n))
    lenient.publish(A(1))
    lenient.publish(A(2))
    assert lenient.handler_errors == 2 and seen == [1, 2]


async def test_drop_oldest_topic_counts_what_it_drops() -> None:
    bus = Bus()
    bus.add_topic("market", (A,), maxsize=3, overflow="drop_oldest")
    seen: list[int] = []
    bus.subscribe(A, lambda e: seen.append(e.n))
    for n in range(10):
        await bus.put(A(n))
    runner = asyncio.create_task(bus.run())
    await asyncio.wait_for(bus.join(), 1)
    runner.cancel()
    assert seen == [7, 8, 9]
    assert bus.stats()["market"]["dropped"] == 7


async def test_block_topic_applies_back_pressure_and_loses_nothing() -> None:
    bus = Bus()
    bus.add_topic("news", (B,), maxsize=2, overflow="block")
    seen: list[int] = []
    bus.subscribe(B, lambda e: seen.append(e.n))

    async def produce() -> None:
        for n in range(20):
            await bus.put(B(n))

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0.01)
    assert not producer.done()  # blocked on the full queue
    runner = asyncio.create_task(bus.run())
    await asyncio.wait_for(producer, 1)
    await asyncio.wait_for(bus.join(), 1)
    runner.cancel()
    assert seen == list(range(20))
    assert bus.stats()["news"]["dropped"] == 0
