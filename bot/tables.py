"""The store's tables (sqlmodel). Changing one needs a migration in `bot/migrations/versions/`.

Money columns are TEXT holding exact decimals: SQLite has no decimal type and a REAL column would
hand back binary floats. Timestamps are stored as aware UTC datetimes.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class DecimalText(TypeDecorator[Decimal]):
    """Exact decimals as text, on every backend."""

    impl = sa.String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        return str(Decimal(value))

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in, aware UTC datetimes out (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _dec(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_type=DecimalText, nullable=nullable, **kwargs)


def _ts(nullable: bool = False, **kwargs: Any) -> Any:
    return Field(sa_type=UTCDateTime, nullable=nullable, **kwargs)


def _source() -> Any:
    """Where a snapshot's numbers come from: "fills" (our own books) or "venue" (reconciled)."""
    return Field(default="fills", sa_column_kwargs={"server_default": "fills"})


class AccountRecord(SQLModel, table=True):
    """A trading account whose state survives restarts (the paper daemon's, a live one's)."""

    __tablename__ = "accounts"
    name: str = Field(primary_key=True)
    mode: str
    initial_cash: Decimal = _dec()
    created: datetime = _ts()


class RunRecord(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    kind: str  # backtest | paper | live
    account: str = Field(index=True)
    started: datetime = _ts()
    ended: datetime | None = _ts(nullable=True)
    status: str = "running"
    config_json: str = ""


class NewsRecord(SQLModel, table=True):
    __tablename__ = "news_items"
    id: str = Field(primary_key=True)
    source: str = Field(index=True)
    title: str
    body: str = ""
    link: str = ""
    published: datetime | None = _ts(nullable=True)
    received: datetime = _ts(index=True)
    symbols: str = ""  # comma-separated
    stale: bool = False
    undated: bool = False
    title_key: str = Field(default="", index=True)  # normalised title, for cross-feed dedup
    raw: str | None = None  # the raw feed entry as JSON, when a poller saw one
    signal_status: str = Field(default="pending", index=True)  # pending | done | failed | skipped


class SignalRecord(SQLModel, table=True):
    __tablename__ = "signals"
    __table_args__ = (sa.UniqueConstraint("account", "news_id", "symbol_key", "model_id"),)
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    run_id: str
    ts: datetime = _ts(index=True)
    news_id: str
    symbol_key: str = ""  # symbol, or "" for market-wide (NULLs would defeat the unique key)
    label: str
    confidence: float
    p_bearish: float
    p_neutral: float
    p_bullish: float
    model_id: str
    source: str
    weight: float = 1.0
    stale: bool = False
    published: datetime | None = _ts(nullable=True)
    received: datetime = _ts()


class OrderRecord(SQLModel, table=True):
    __tablename__ = "orders"
    client_order_id: str = Field(primary_key=True)
    account: str = Field(index=True)
    run_id: str
    symbol: str
    side: str
    order_type: str
    qty: Decimal = _dec()
    price: Decimal | None = _dec(nullable=True)
    time_in_force: str = "GTC"
    reduce_only: bool = False
    status: str = Field(index=True)
    venue_order_id: str = ""
    filled_qty: Decimal = _dec()
    avg_price: Decimal | None = _dec(nullable=True)
    fees: Decimal = _dec()
    reason: str = ""
    created: datetime = _ts()
    updated: datetime | None = _ts(nullable=True)
    decision_id: str = ""


class DecisionRecord(SQLModel, table=True):
    """What one news item or re-vote made of the account (see bot/decisions.py). Read newest
    first per account by `lorabot status --decisions` and the console: hence the index."""

    __tablename__ = "decisions"
    __table_args__ = (sa.Index("ix_decisions_account_ts", "account", "ts"),)
    id: str = Field(primary_key=True)
    account: str
    run_id: str
    ts: datetime = _ts()
    trigger: str
    symbol: str = ""
    outcome: str = Field(index=True)
    reason: str = ""
    news_id: str = Field(default="", index=True)
    received: datetime | None = _ts(nullable=True)
    label: str = ""
    confidence: float = 0.0
    composite_label: str = ""
    composite_confidence: float = 0.0
    target_before: Decimal | None = _dec(nullable=True)
    target_after: Decimal | None = _dec(nullable=True)
    risk: str = ""
    order_id: str = ""
    source: str = ""
    model_id: str = ""


class FillRecord(SQLModel, table=True):
    __tablename__ = "fills"
    __table_args__ = (sa.UniqueConstraint("account", "exec_id"),)
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    run_id: str
    exec_id: str
    client_order_id: str = Field(index=True)
    ts: datetime = _ts()
    symbol: str
    side: str
    qty: Decimal = _dec()
    price: Decimal = _dec()
    fee: Decimal = _dec()
    fee_currency: str = "USDT"
    liquidity: str = "taker"


class PositionSnapshotRecord(SQLModel, table=True):
    __tablename__ = "position_snapshots"
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    run_id: str
    ts: datetime = _ts()
    symbol: str
    qty: Decimal = _dec()
    avg_price: Decimal = _dec()
    realised_pnl: Decimal = _dec()
    unrealised_pnl: Decimal = _dec()
    mark: Decimal | None = _dec(nullable=True)
    source: str = _source()


class EquitySnapshotRecord(SQLModel, table=True):
    __tablename__ = "equity_snapshots"
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    run_id: str
    ts: datetime = _ts(index=True)
    cash: Decimal = _dec()
    equity: Decimal = _dec()
    realised_pnl: Decimal = _dec()
    unrealised_pnl: Decimal = _dec()
    fees: Decimal = _dec()
    source: str = _source()


class ReconciliationRecord(SQLModel, table=True):
    """What the venue said at a reconciliation: the truth `lorabot status` shows for a live
    account, where the stored fills alone can be wrong (a change made on the venue, a restart)."""

    __tablename__ = "reconciliations"
    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(index=True)
    run_id: str
    ts: datetime = _ts(index=True)
    cash: Decimal | None = _dec(nullable=True)
    positions: str = "{}"  # JSON: symbol -> [signed qty, average price], as exact decimal text


class FeedStateRecord(SQLModel, table=True):
    """Per-feed polling state, so conditional GET and backoff survive a restart."""

    __tablename__ = "feed_state"
    url: str = Field(primary_key=True)
    etag: str = ""
    last_modified: str = ""
    last_success: datetime | None = _ts(nullable=True)
    last_error: str = ""
    error_count: int = 0
    items_seen: int = 0
