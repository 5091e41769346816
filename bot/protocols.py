"""The small interfaces through which `bot/` knows the outside world.

The engine never imports an SDK: a news source, a market stream, a broker and a sentiment model are
whatever satisfies these protocols. Adapters live in `adapters/` and are chosen in one place
(`bot/assemble.py`). Keeping these narrow is what lets replay and live share one object graph.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, runtime_checkable

from bot.events import Bar, Fill, Label, OrderUpdate, Side, Ticker, Trade
from bot.orders import Order

Publish = Callable[[object], Awaitable[None]]
"""How a live source hands an event to the bus: awaiting it applies back-pressure."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One model answer: always one of the three classes, with calibrated probabilities.

    `probs` is in the one label order (bearish, neutral, bullish) and sums to 1.
    """

    label: Label
    confidence: float
    probs: tuple[float, float, float]
    model_id: str

    @classmethod
    def from_probs(cls, probs: Sequence[float], model_id: str) -> Prediction:
        if len(probs) != 3:
            raise ValueError(f"expected 3 class probabilities, got {len(probs)}")
        total = float(sum(probs))
        if total <= 0:
            raise ValueError("class probabilities sum to zero")
        p = tuple(float(x) / total for x in probs)
        best = max(range(3), key=lambda i: p[i])
        return cls(Label(best), p[best], (p[0], p[1], p[2]), model_id)


class ModelUnavailable(Exception):
    """The model could not answer now (server down, timeout); the item is kept and retried."""


@runtime_checkable
class SentimentModel(Protocol):
    """What the signal service needs from a model. `model_id` changes whenever answers could.

    `load` readies it for one-shot work (a backtest's prefetch, `lorabot classify`); `start`
    readies it to serve for a long time (the daemon: weights loaded and any fast path for single
    headlines built before the first item). Both may do nothing; neither may be skipped by the
    caller, so a model's start-up cost is never paid on the first headline by surprise.
    """

    @property
    def model_id(self) -> str: ...

    async def load(self) -> None: ...

    async def start(self) -> None: ...

    async def classify(self, texts: Sequence[str]) -> list[Prediction]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class MarketContext:
    """The numbers a market-aware model reads beside a headline: features of the bars that had
    closed by the item's `received` time (names and values in the model's own order; NaN where a
    window was incomplete). `key` is part of the signal cache's key, so a numbers-aware answer is
    never confused with a text-only one, nor with the same headline in another market."""

    names: tuple[str, ...]
    values: tuple[float, ...]

    @property
    def key(self) -> str:
        return ",".join("nan" if math.isnan(v) else f"{v:.9g}" for v in self.values)


class MarketFeatures(Protocol):
    """Turns the bars seen so far into an item's `MarketContext` (past-only by construction:
    it only ever holds bars that have been released)."""

    def on_bar(self, bar: Bar) -> None: ...

    def context(self, before: datetime) -> MarketContext: ...


@runtime_checkable
class MarketAwareModel(SentimentModel, Protocol):
    """A model that reads a headline together with its market context (an impact model).

    `prepare` does the costly, context-free part for many texts at once (a text encoder's
    embeddings; nothing for a numbers-only model), off the event loop; `classify_in_context` is
    then cheap and synchronous, so a replay can answer each item when it is released, once the
    bars before it have been seen. Plain `classify` answers with an unknown (all-NaN) context.
    """

    async def prepare(self, texts: Sequence[str]) -> None: ...

    def classify_in_context(
        self, texts: Sequence[str], contexts: Sequence[MarketContext]
    ) -> list[Prediction]: ...


@runtime_checkable
class NewsSource(Protocol):
    """A live source of news: runs until cancelled, publishing each new item once."""

    name: str

    async def run(self, publish: Publish) -> None: ...


@dataclass(frozen=True, slots=True)
class LinkState:
    """One connection to the outside as the operator sees it (the console's health panel): is
    it up, how often did it drop, what was the last error. A file source is a link that is up
    while it plays."""

    name: str  # e.g. "bybit public websocket", "bybit rest", "bars file"
    target: str  # the URL or path, never a secret
    up: bool
    connects: int = 0
    reconnects: int = 0
    messages: int = 0
    errors: int = 0
    last_error: str | None = None


@runtime_checkable
class MarketStream(Protocol):
    """A live source of market data (bars, trades, tickers) for the configured symbols."""

    async def run(self, publish: Publish) -> None: ...

    def links(self) -> tuple[LinkState, ...]:
        """The stream's connections, for the console (cheap: read once a second)."""
        ...


MarketEvent = Bar | Trade | Ticker
Emit = Callable[[object], None]
"""How a broker reports back (OrderUpdate, Fill) into the engine; synchronous and ordered."""


@dataclass(frozen=True, slots=True)
class VenueState:
    """What a venue says is true, for reconciliation on start and after reconnects."""

    open_orders: tuple[Order, ...]
    positions: dict[str, tuple[Decimal, Decimal]]  # symbol -> (signed qty, average price)
    cash: Decimal | None  # wallet balance in the quote currency, when known
    fills: tuple[Fill, ...] = ()
    updates: tuple[OrderUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class Protection:
    """A position's protective levels as the venue keeps them: stop-loss and take-profit prices,
    and the trailing stop as a price distance (the venue moves it with the best price). None:
    no such level (a level the venue holds is cancelled)."""

    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    trailing_stop: Decimal | None = None

    @property
    def empty(self) -> bool:
        return self.stop_loss is None and self.take_profit is None and self.trailing_stop is None


@dataclass(frozen=True, slots=True)
class VenueExit:
    """The venue closed a position by one of its protective levels: the order it created,
    announced (before its fills) so the engine can record the exit, with its reason, as it
    records its own. `reason` is "stop_loss", "take_profit" or "trailing_stop"."""

    ts: datetime
    symbol: str
    client_order_id: str
    venue_order_id: str
    side: Side
    qty: Decimal
    reason: str
    # Set when a reconciliation found the exit after the fact (it happened while lorabot was
    # down): an exit whose executions the store already holds was recorded in an earlier life.
    exec_ids: tuple[str, ...] = ()


class Broker(Protocol):
    """Where orders go. Paper and live brokers are separate classes with this one face.

    `submit` must not block: outcomes come back later through `emit` as `OrderUpdate` and `Fill`
    events, in the order the venue reported them.
    """

    def bind(self, emit: Emit) -> None: ...

    def submit(self, order: Order) -> None: ...

    def cancel(self, order: Order) -> None: ...

    def on_market(self, event: MarketEvent) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def reconcile(self, known: Sequence[Order]) -> VenueState | None: ...


FatalHandler = Callable[[BaseException], None]


class LiveBroker(Broker, Protocol):
    """A broker in front of a real venue: besides orders, it can fail for good, and it can learn
    that its picture of the account is out of date.

    `on_fatal` is called once with an error that no retry can cure (bad credentials, the account
    locked): the daemon stops and flattens. `needs_reconcile` turns true when the venue reported
    something lorabot cannot explain from its own orders (an execution of an order it did not
    place, a gap in a stream); the daemon then reconciles soon instead of at the next interval.
    """

    on_fatal: FatalHandler | None

    @property
    def needs_reconcile(self) -> bool: ...

    def set_protection(self, symbol: str, protection: Protection) -> None:
        """Keep `protection` on the venue for `symbol`'s open position (sent when it differs
        from what the venue holds, and re-placed on reconciliation); never blocks. A level the
        venue triggers comes back as a `VenueExit` and the closing fills."""
        ...

    def links(self) -> tuple[LinkState, ...]:
        """The broker's connections to the venue (private websocket, REST), for the console."""
        ...
