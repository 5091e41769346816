"""The event bus: typed publish/subscribe, synchronous dispatch, bounded queues at the edge.

Handlers are plain functions called in subscription order, and an event published from inside a
handler is queued behind the current one (FIFO) rather than dispatched recursively. That one rule
makes the order of everything downstream a function of the order of inputs, which is what lets
a replay produce byte-identical trades and lets paper mode and replay share the same objects.

Live sources do not call handlers directly: they `await bus.put(event)`, which lands in a bounded
per-topic queue drained by `run()`. A full queue either blocks the source (back-pressure: news,
which must never be lost) or drops the oldest queued event, counted and logged (market data, where
a newer tick supersedes an older one). Nothing is ever dropped silently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.log import get_logger

log = get_logger("bot.bus")

Handler = Callable[[Any], None]
Overflow = Literal["block", "drop_oldest"]


@dataclass
class TopicStats:
    published: int = 0
    dropped: int = 0
    errors: int = 0
    high_water: int = 0


@dataclass
class _Topic:
    name: str
    queue: asyncio.Queue[Any]
    overflow: Overflow
    stats: TopicStats = field(default_factory=TopicStats)


class HandlerError(Exception):
    """A handler failed; raised in replay (fail fast), logged and counted live."""


class Bus:
    def __init__(self, *, strict: bool = True) -> None:
        # strict: a handler's exception propagates (replay, tests). Not strict: it is logged and
        # counted and the daemon keeps going (one bad event must not stop trading).
        self.strict = strict
        self._handlers: dict[type, list[Handler]] = {}
        self._pending: deque[Any] = deque()
        self._dispatching = False
        self._topics: dict[str, _Topic] = {}
        self._topic_of: dict[type, str] = {}
        self.handler_errors = 0

    # -- synchronous core -------------------------------------------------------------------

    def subscribe(self, event_type: type, handler: Handler) -> None:
        self._handlers.setdefault(event_type, []).append(handler)

    def handlers(self, event_type: type) -> list[Handler]:
        return list(self._handlers.get(event_type, ()))

    def publish(self, event: Any) -> None:
        """Dispatch now, or after the event being dispatched if called from a handler."""
        if self._dispatching:
            self._pending.append(event)
            return
        self._dispatching = True
        try:
            if self.strict:  # `_dispatch`, inlined: this runs once per bar of a replay
                for handler in self._handlers.get(type(event), ()):
                    handler(event)
            else:
                self._dispatch(event)
            pending = self._pending
            while pending:
                self._dispatch(pending.popleft())
        except BaseException:
            self._pending.clear()
            raise
        finally:
            self._dispatching = False

    def _dispatch(self, event: Any) -> None:
        handlers = self._handlers.get(type(event))
        if not handlers:
            return
        if self.strict:
            for handler in handlers:
                handler(event)
            return
        for handler in handlers:
            try:
                handler(event)
            except Exception:
                self.handler_errors += 1
                log.exception(
                    "handler failed", handler=_name(handler), event_type=type(event).__name__
                )

    # -- bounded queues for live sources ------------------------------------------------------

    def add_topic(
        self, name: str, event_types: tuple[type, ...], maxsize: int, overflow: Overflow
    ) -> None:
        topic = _Topic(name, asyncio.Queue(maxsize=maxsize), overflow)
        self._topics[name] = topic
        for event_type in event_types:
            self._topic_of[event_type] = name

    async def put(self, event: Any) -> None:
        """Hand an event from a live source to its topic queue (awaits when it must block)."""
        name = self._topic_of.get(type(event))
        if name is None:
            self.publish(event)
            return
        topic = self._topics[name]
        queue = topic.queue
        if topic.overflow == "drop_oldest" and queue.full():
            queue.get_nowait()
            queue.task_done()
            topic.stats.dropped += 1
            if topic.stats.dropped == 1 or topic.stats.dropped % 1000 == 0:
                log.warning(
                    "queue full: dropped the oldest event",
                    topic=name,
                    dropped=topic.stats.dropped,
                    maxsize=queue.maxsize,
                )
        await queue.put(event)
        topic.stats.published += 1
        size = queue.qsize()
        if size > topic.stats.high_water:
            topic.stats.high_water = size

    async def run(self) -> None:
        """Drain every topic queue into `publish` until cancelled."""
        tasks = [
            asyncio.create_task(self._drain(topic), name=f"bus:{topic.name}")
            for topic in self._topics.values()
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _drain(self, topic: _Topic) -> None:
        queue = topic.queue
        while True:
            event = await queue.get()
            try:
                self.publish(event)
            except Exception:
                topic.stats.errors += 1
                raise
            finally:
                queue.task_done()

    async def join(self) -> None:
        """Wait until everything queued so far has been dispatched."""
        for topic in self._topics.values():
            await topic.queue.join()

    def stats(self) -> dict[str, dict[str, int]]:
        return {
            name: {
                "queued": topic.queue.qsize(),
                "published": topic.stats.published,
                "dropped": topic.stats.dropped,
                "high_water": topic.stats.high_water,
            }
            for name, topic in self._topics.items()
        }


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", repr(handler))
