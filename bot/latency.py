"""News to order latency: from a `NewsItem`'s publication on the bus to the broker being asked.

Why it is measured this way: the figure users feel is how long a headline takes to become an
order, and every stage in between (the signal service's queue and batching wait, the model, the
vote, the risk gate, the store write before sending) belongs in it. Two readings on the clock's
steady scale (`Clock.monotonic`: `perf_counter` live, replay time in a replay) bracket it: one
when the bus dispatches the news item, one in `Engine.place` just before `broker.submit`. The
decision record that placed the order names both the news item and the order, which pairs them.
One measurement feeds the console's `/metrics` histogram and the benchmark
(bench/news_to_order.py), so the two figures cannot disagree.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.bus import Bus
from bot.events import Decision, NewsItem
from bot.orders import Order

# News items (and orders) remembered while waiting for their pair: a headline that trades does
# so within seconds, and one that does not must not grow memory for ever.
_NEWS_KEPT = 10_000
SAMPLES_KEPT = 100_000


@dataclass(frozen=True, slots=True)
class LatencySample:
    news_id: str
    client_order_id: str
    news_at: float  # monotonic seconds: the news item's dispatch on the bus
    order_at: float  # monotonic seconds: just before the broker was asked to place the order

    @property
    def seconds(self) -> float:
        return self.order_at - self.news_at


@dataclass
class NewsToOrder:
    """Pairs each order with the news item that caused it; `listeners` get each latency (s)."""

    monotonic: Callable[[], float]
    listeners: list[Callable[[float], None]] = field(default_factory=list)
    samples: deque[LatencySample] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    _news: OrderedDict[str, float] = field(default_factory=OrderedDict)
    _orders: dict[str, float] = field(default_factory=dict)

    def attach(self, bus: Bus, submit_listeners: list[Callable[[Order], None]]) -> None:
        bus.subscribe(NewsItem, self.on_news)
        bus.subscribe(Decision, self.on_decision)
        submit_listeners.append(self.on_submit)

    def on_news(self, item: NewsItem) -> None:
        if item.id in self._news:
            return  # a retry of an item already seen: its latency runs from the first sight
        self._news[item.id] = self.monotonic()
        if len(self._news) > _NEWS_KEPT:
            self._news.popitem(last=False)

    def on_submit(self, order: Order) -> None:
        self._orders[order.client_order_id] = self.monotonic()
        if len(self._orders) > _NEWS_KEPT:  # an order no decision record names (an exit)
            del self._orders[next(iter(self._orders))]

    def on_decision(self, decision: Decision) -> None:
        """The decision record is published after `place` returns; it names both ends."""
        if not decision.order_id:
            return
        order_at = self._orders.pop(decision.order_id, None)
        if order_at is None or decision.trigger != "news":
            return
        news_at = self._news.get(decision.news_id)  # market-wide news: an order per symbol
        if news_at is None:
            return
        sample = LatencySample(decision.news_id, decision.order_id, news_at, order_at)
        self.samples.append(sample)
        for listener in self.listeners:
            listener(sample.seconds)
