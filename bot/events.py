"""The typed records that flow through the bus.

Every event is frozen and carries a timezone-aware UTC timestamp, so that replay and live runs can
be compared field by field and nothing downstream can mutate what a source saw. Prices and
quantities are `Decimal` from the moment they are parsed: an order must never inherit the rounding
error of a binary float. Model outputs (confidences, probabilities) stay floats: they are
statistics, not money.

`NewsItem`'s JSON-lines form (`to_json` / `from_json`) is the one news file format that the
recorder writes and the backtest replays.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, NamedTuple


class Label(IntEnum):
    """The one label order used everywhere: bearish=0, neutral=1, bullish=2."""

    BEARISH = 0
    NEUTRAL = 1
    BULLISH = 2

    @property
    def word(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: str | int) -> Label:
        """Accept the project's words, the common synonyms and the integer ids."""
        if isinstance(value, int):
            return cls(value)
        key = value.strip().lower()
        try:
            return LABEL_SYNONYMS[key]
        except KeyError:
            raise ValueError(
                f"unknown label {value!r}: use bearish/neutral/bullish "
                "(or negative/neutral/positive)"
            ) from None


LABEL_SYNONYMS: dict[str, Label] = {
    "bearish": Label.BEARISH,
    "negative": Label.BEARISH,
    "neg": Label.BEARISH,
    "sell": Label.BEARISH,
    "neutral": Label.NEUTRAL,
    "hold": Label.NEUTRAL,
    "bullish": Label.BULLISH,
    "positive": Label.BULLISH,
    "pos": Label.BULLISH,
    "buy": Label.BULLISH,
    "0": Label.BEARISH,
    "1": Label.NEUTRAL,
    "2": Label.BULLISH,
}


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    # A protective exit whose level a bar reached: it fills at its `price` (the level, or the
    # open where the bar gapped through it), as a taker, in replay and paper mode.
    STOP = "stop"


class TimeInForce(StrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "PostOnly"


class Liquidity(StrEnum):
    MAKER = "maker"
    TAKER = "taker"


def utc(value: datetime) -> datetime:
    """Normalise to an aware UTC datetime; a naive time is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_time(value: str | int | float | datetime) -> datetime:
    """Parse ISO-8601 (naive means UTC), epoch seconds or epoch milliseconds."""
    if isinstance(value, datetime):
        return utc(value)
    if isinstance(value, int | float):
        seconds = value / 1000 if abs(value) > 1e11 else value
        return datetime.fromtimestamp(seconds, UTC)
    text = value.strip()
    if text.lstrip("-").isdigit():
        return parse_time(int(text))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    return utc(datetime.fromisoformat(text))


def iso(value: datetime) -> str:
    """ISO-8601 in UTC with a `Z`, the one textual form every file lorabot writes uses."""
    text = value.astimezone(UTC).isoformat()
    return text.replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class NewsItem:
    """A piece of news as a source saw it.

    `received` is when lorabot (or the recorder) first knew of it; replay releases the item then,
    never at `published`, so a backtest cannot read news before it could have been read live.
    """

    id: str
    source: str
    title: str
    received: datetime
    body: str = ""
    link: str = ""
    published: datetime | None = None
    symbols: tuple[str, ...] = ()
    stale: bool = False
    undated: bool = False

    @property
    def ts(self) -> datetime:
        return self.received

    @property
    def text(self) -> str:
        """What the model reads: the title, and the body when there is one."""
        if self.body and self.body != self.title:
            return f"{self.title}. {self.body}"
        return self.title

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "title": self.title,
            "body": self.body,
            "link": self.link,
            "published": iso(self.published) if self.published else None,
            "received": iso(self.received),
            "symbols": list(self.symbols),
            "stale": self.stale,
            "undated": self.undated,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NewsItem:
        """Build from the JSONL form; `received` falls back to `published` (one is required)."""
        title = data.get("title")
        if not isinstance(title, str) or not title.strip():
            raise ValueError("'title' is missing or empty")
        published = parse_time(data["published"]) if data.get("published") else None
        received_raw = data.get("received")
        if received_raw:
            received = parse_time(received_raw)
        elif published is not None:
            received = published
        else:
            raise ValueError("neither 'received' nor 'published' is set")
        symbols = data.get("symbols") or ()
        if not isinstance(symbols, list | tuple) or not all(isinstance(s, str) for s in symbols):
            raise ValueError("'symbols' must be a list of strings")
        ident = data.get("id") or data.get("link") or ""
        if not ident:
            ident = news_id(str(data.get("source", "")), title)
        return cls(
            id=str(ident),
            source=str(data.get("source") or "unknown"),
            title=title.strip(),
            body=str(data.get("body") or ""),
            link=str(data.get("link") or ""),
            published=published,
            received=received,
            symbols=tuple(symbols),
            stale=bool(data.get("stale", False)),
            undated=bool(data.get("undated", False)),
        )

    @classmethod
    def from_json(cls, line: str) -> NewsItem:
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a news line must be a JSON object")
        return cls.from_dict(data)


def news_id(source: str, title: str) -> str:
    """A stable id for an item that has neither guid nor link."""
    import hashlib

    digest = hashlib.sha1(f"{source}\x00{title.strip().lower()}".encode()).hexdigest()
    return f"sha1:{digest[:20]}"


class Bar(NamedTuple):
    """An OHLCV bar. `ts` is its close time, when it becomes known; `ts_open` its open time.

    A NamedTuple rather than a frozen dataclass, unlike the other events: it is just as immutable
    and typed, and about three times cheaper to build, which matters at a million bars a replay.
    """

    symbol: str
    ts_open: datetime
    ts: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal

    @property
    def interval(self) -> timedelta:
        return self.ts - self.ts_open


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade print."""

    symbol: str
    ts: datetime
    price: Decimal
    qty: Decimal
    side: Side
    trade_id: str = ""


@dataclass(frozen=True, slots=True)
class Ticker:
    """Best bid/ask and last price; any of them may be missing in a delta update."""

    symbol: str
    ts: datetime
    last: Decimal | None = None
    bid: Decimal | None = None
    ask: Decimal | None = None
    mark: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Signal:
    """The model's reading of one news item for one symbol (`symbol=None`: market-wide).

    `weight` is how much the item counts in the vote before age decay (source weight, and the
    market-wide weight for items that name no symbol).
    """

    ts: datetime
    symbol: str | None
    label: Label
    confidence: float
    probs: tuple[float, float, float]
    model_id: str
    source: str
    news_id: str
    published: datetime | None
    received: datetime
    weight: float = 1.0
    stale: bool = False


@dataclass(frozen=True, slots=True)
class TargetPosition:
    """What the strategy wants to hold, before the risk gate has had its say."""

    ts: datetime
    symbol: str
    qty: Decimal
    label: Label
    confidence: float
    reason: str = ""
    decision_id: str = ""


class Outcome(StrEnum):
    """How a decision ended: the order it caused, or the one reason it caused none."""

    ORDER = "order"
    STALE = "stale"
    NOT_TRADED = "not traded"  # the item names a symbol this account does not trade
    HOLD = "hold"  # no signal counts in the window: the target stays
    BELOW_THRESHOLD = "below threshold"
    UNCHANGED = "unchanged"  # the sized target is the position already held
    WITHIN_BAND = "within band"
    NO_PRICE = "no price"
    RISK_CAP = "risk cap"  # the risk gate refused it (limits, stale price, order rate)
    KILL_SWITCH = "kill switch"
    REJECTED = "rejected"  # the instrument's rules refuse the size or price
    MODEL_FAILED = "model failed"


@dataclass(frozen=True, slots=True)
class Decision:
    """What one news item (or one timer re-vote) made of the account, start to end.

    Written for every news item that reaches the engine and every re-vote that ran, so that
    "why did this headline not trade?" always has an answer. `order_id` is the client order id of
    the order it caused (the order carries this record's `id` back).
    """

    id: str
    ts: datetime  # decided
    trigger: str  # "news", "revote" or "risk"
    symbol: str | None
    outcome: Outcome
    reason: str
    news_id: str = ""
    received: datetime | None = None
    label: Label | None = None  # the signal's, for news
    confidence: float = 0.0
    composite_label: Label | None = None
    composite_confidence: float = 0.0
    target_before: Decimal | None = None
    target_after: Decimal | None = None
    risk: str = ""  # the risk gate's answer: "", "ok", or what it clipped or blocked
    order_id: str = ""
    source: str = ""
    model_id: str = ""  # the model whose signal caused it (a news decision; "" for a re-vote)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as decided; stored under `client_order_id` before anything is sent."""

    ts: datetime
    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType = OrderType.MARKET
    price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    reason: str = ""
    decision_id: str = ""


class OrderStatus(StrEnum):
    """Where an order is in its life. The legal moves between these are `bot.orders`' table."""

    CREATED = "created"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    UNTRIGGERED = "untriggered"
    TRIGGERED = "triggered"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL

    @property
    def is_open(self) -> bool:
        return self not in TERMINAL


TERMINAL: frozenset[OrderStatus] = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """A change of an order's state reported by a broker (the venue's truth)."""

    ts: datetime
    client_order_id: str
    status: OrderStatus
    venue_order_id: str = ""
    filled_qty: Decimal | None = None
    avg_price: Decimal | None = None
    reason: str = ""
    price: Decimal | None = None
    qty: Decimal | None = None
    # a rejection that is the broker's own conclusion ("never placed"), not the venue's answer:
    # a later report from the venue overrules it (bot.orders.REVIVABLE)
    provisional: bool = False

    def __post_init__(self) -> None:
        # A broker may hand the venue's word as text; an unknown one fails here, at the edge,
        # naming it, instead of deep in the engine.
        if not isinstance(self.status, OrderStatus):
            try:
                object.__setattr__(self, "status", OrderStatus(self.status))
            except ValueError:
                raise ValueError(
                    f"order {self.client_order_id}: unknown order status {self.status!r}"
                ) from None


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution. `exec_id` is unique per venue: fills are applied once, keyed by it."""

    ts: datetime
    client_order_id: str
    exec_id: str
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity = Liquidity.TAKER
    fee_currency: str = "USDT"


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    ts: datetime
    symbol: str
    qty: Decimal
    avg_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    mark: Decimal | None = None


@dataclass(frozen=True, slots=True)
class EquitySnapshot:
    ts: datetime
    cash: Decimal
    equity: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    fees: Decimal
    positions: tuple[PositionSnapshot, ...] = field(default=())
    # "fills": the engine's own accounting; "venue": taken right after adopting what the venue
    # reported at a reconciliation (what `lorabot status` trusts for a live account)
    source: str = "fills"


MarketEvent = Bar | Trade | Ticker
Event = (
    NewsItem
    | Bar
    | Trade
    | Ticker
    | Signal
    | TargetPosition
    | OrderRequest
    | OrderUpdate
    | Fill
    | PositionSnapshot
    | EquitySnapshot
)
