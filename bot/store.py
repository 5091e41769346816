"""Persistence: everything that happened, in SQLite (WAL) by default or any SQLAlchemy URL.

Why it is shaped like this:
- Orders are written and committed *before* they are sent, under their client order id, so that
  after a crash the venue's view can be reconciled against ours.
- In live and paper mode (`durable=True`) every order and fill is committed at once and news and
  signals within `commit_interval`; in a replay, writes are batched (`commit_every`) so that
  persistence does not dominate the run. A replay can always be run again; a daemon cannot.
- Fills are unique per (account, exec id) and signals per (account, news id, symbol, model id):
  writing one twice after a restart is a no-op, never a duplicate.
- The schema is migrated with alembic from the first table, so a store made by an older version
  opens after an upgrade.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from bot.events import (
    EquitySnapshot,
    Fill,
    Label,
    Liquidity,
    NewsItem,
    OrderType,
    PositionSnapshot,
    Side,
    Signal,
    TimeInForce,
)
from bot.orders import Order, OrderStatus
from bot.tables import (
    AccountRecord,
    EquitySnapshotRecord,
    FeedStateRecord,
    FillRecord,
    NewsRecord,
    OrderRecord,
    PositionSnapshotRecord,
    RunRecord,
    SignalRecord,
)

MIGRATIONS = Path(__file__).with_name("migrations")


class StoreError(Exception):
    pass


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get WAL, a busy timeout and their folder created."""
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(url, pool_pre_ping=True)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (creating it in an empty database)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def _upsert(
    connection: Connection,
    table: sa.Table,
    rows: list[dict[str, Any]],
    key: list[str],
    update: bool,
) -> None:
    """INSERT .. ON CONFLICT (key) DO UPDATE / DO NOTHING on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
    else:  # pragma: no cover - other backends: plain inserts, one row at a time
        for row in rows:
            try:
                with connection.begin_nested():
                    connection.execute(table.insert(), row)
            except sa.exc.IntegrityError:
                if update:
                    where = sa.and_(*(table.c[k] == row[k] for k in key))
                    connection.execute(table.update().where(where), row)
        return
    statement = insert(table)
    if update:
        columns = {c: statement.excluded[c] for c in rows[0] if c not in key}
        statement = statement.on_conflict_do_update(index_elements=key, set_=columns)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=key)
    connection.execute(statement, rows)


@dataclass(frozen=True)
class AccountState:
    """What a restart resumes from: the fills (positions and cash follow) and open orders."""

    name: str
    initial_cash: Decimal
    fills: list[Fill]
    open_orders: list[Order]


class Store:
    """Batched writes, immediate commits where durability matters, small typed reads."""

    def __init__(
        self,
        url: str,
        *,
        account: str = "default",
        run_id: str = "",
        durable: bool = True,
        commit_every: int = 256,
    ) -> None:
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self.account = account
        self.run_id = run_id
        self.durable = durable
        self.commit_every = commit_every
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._pending_count = 0
        self._t: dict[str, sa.Table] = {
            name: model.__table__  # type: ignore[attr-defined]
            for name, model in {
                "news": NewsRecord,
                "signals": SignalRecord,
                "orders": OrderRecord,
                "fills": FillRecord,
                "positions": PositionSnapshotRecord,
                "equity": EquitySnapshotRecord,
            }.items()
        }

    # -- accounts and runs ------------------------------------------------------------------

    def open_account(self, name: str, mode: str, initial_cash: Decimal, now: datetime) -> Decimal:
        """Create the account on first use; return its initial cash (the stored one wins)."""
        table = AccountRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            row = connection.execute(sa.select(table).where(table.c.name == name)).first()
            if row is not None:
                return Decimal(row.initial_cash)
            connection.execute(
                table.insert(),
                {"name": name, "mode": mode, "initial_cash": initial_cash, "created": now},
            )
        return initial_cash

    def start_run(self, run_id: str, kind: str, now: datetime, config: dict[str, Any]) -> None:
        self.run_id = run_id
        table = RunRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            connection.execute(
                table.insert(),
                {
                    "id": run_id,
                    "kind": kind,
                    "account": self.account,
                    "started": now,
                    "status": "running",
                    "config_json": json.dumps(config, default=str),
                },
            )

    def end_run(self, now: datetime, status: str = "finished") -> None:
        self.flush()
        table = RunRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            connection.execute(
                table.update().where(table.c.id == self.run_id), {"ended": now, "status": status}
            )

    # -- writes -----------------------------------------------------------------------------

    def _queue(self, kind: str, row: dict[str, Any]) -> None:
        self._pending.setdefault(kind, []).append(row)
        self._pending_count += 1
        if self._pending_count >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        """Write everything pending in one transaction, in dependency order."""
        if not self._pending_count:
            return
        pending, self._pending, self._pending_count = self._pending, {}, 0
        with self.engine.begin() as connection:
            _upsert(connection, self._t["news"], pending.get("news", []), ["id"], update=False)
            for status_row in pending.get("news_status", []):
                table = self._t["news"]
                connection.execute(
                    table.update().where(table.c.id == status_row["id"]),
                    {"signal_status": status_row["signal_status"]},
                )
            _upsert(
                connection,
                self._t["signals"],
                pending.get("signals", []),
                ["account", "news_id", "symbol_key", "model_id"],
                update=False,
            )
            orders = _last_per_key(pending.get("orders", []), "client_order_id")
            _upsert(connection, self._t["orders"], orders, ["client_order_id"], update=True)
            _upsert(
                connection,
                self._t["fills"],
                pending.get("fills", []),
                ["account", "exec_id"],
                update=False,
            )
            for kind in ("positions", "equity"):
                rows = pending.get(kind, [])
                if rows:
                    connection.execute(self._t[kind].insert(), rows)

    def record_news(
        self, item: NewsItem, raw: dict[str, Any] | None = None, title_key: str = ""
    ) -> None:
        self._queue(
            "news",
            {
                "id": item.id,
                "source": item.source,
                "title": item.title,
                "body": item.body,
                "link": item.link,
                "published": item.published,
                "received": item.received,
                "symbols": ",".join(item.symbols),
                "stale": item.stale,
                "undated": item.undated,
                "title_key": title_key,
                "raw": json.dumps(raw, default=str, ensure_ascii=False) if raw else None,
                "signal_status": "pending",
            },
        )

    def mark_news(self, news_id: str, status: str) -> None:
        """pending | done | failed | skipped: how far the model got with an item."""
        self._queue("news_status", {"id": news_id, "signal_status": status})

    def record_signal(self, signal: Signal) -> None:
        self._queue(
            "signals",
            {
                "account": self.account,
                "run_id": self.run_id,
                "ts": signal.ts,
                "news_id": signal.news_id,
                "symbol_key": signal.symbol or "",
                "label": signal.label.word,
                "confidence": signal.confidence,
                "p_bearish": signal.probs[0],
                "p_neutral": signal.probs[1],
                "p_bullish": signal.probs[2],
                "model_id": signal.model_id,
                "source": signal.source,
                "weight": signal.weight,
                "stale": signal.stale,
                "published": signal.published,
                "received": signal.received,
            },
        )

    def record_order(self, order: Order) -> None:
        """Insert or update an order; committed at once when durable (before it is sent)."""
        self._queue(
            "orders",
            {
                "client_order_id": order.client_order_id,
                "account": self.account,
                "run_id": self.run_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "order_type": order.order_type.value,
                "qty": order.qty,
                "price": order.price,
                "time_in_force": order.time_in_force.value,
                "reduce_only": order.reduce_only,
                "status": order.status.value,
                "venue_order_id": order.venue_order_id,
                "filled_qty": order.filled_qty,
                "avg_price": order.avg_price,
                "fees": order.fees,
                "reason": order.reason[:500],
                "created": order.created,
                "updated": order.updated,
            },
        )
        if self.durable:
            self.flush()

    def record_fill(self, fill: Fill) -> None:
        self._queue(
            "fills",
            {
                "account": self.account,
                "run_id": self.run_id,
                "exec_id": fill.exec_id,
                "client_order_id": fill.client_order_id,
                "ts": fill.ts,
                "symbol": fill.symbol,
                "side": fill.side.value,
                "qty": fill.qty,
                "price": fill.price,
                "fee": fill.fee,
                "fee_currency": fill.fee_currency,
                "liquidity": fill.liquidity.value,
            },
        )
        if self.durable:
            self.flush()

    def record_equity(self, snapshot: EquitySnapshot) -> None:
        self._queue(
            "equity",
            {
                "account": self.account,
                "run_id": self.run_id,
                "ts": snapshot.ts,
                "cash": snapshot.cash,
                "equity": snapshot.equity,
                "realised_pnl": snapshot.realised_pnl,
                "unrealised_pnl": snapshot.unrealised_pnl,
                "fees": snapshot.fees,
            },
        )
        for position in snapshot.positions:
            self.record_position(position)

    def record_position(self, snapshot: PositionSnapshot) -> None:
        self._queue(
            "positions",
            {
                "account": self.account,
                "run_id": self.run_id,
                "ts": snapshot.ts,
                "symbol": snapshot.symbol,
                "qty": snapshot.qty,
                "avg_price": snapshot.avg_price,
                "realised_pnl": snapshot.realised_pnl,
                "unrealised_pnl": snapshot.unrealised_pnl,
                "mark": snapshot.mark,
            },
        )

    # -- reads ------------------------------------------------------------------------------

    def has_news(self, news_id: str) -> bool:
        self.flush()
        table = self._t["news"]
        with self.engine.connect() as connection:
            found = connection.execute(sa.select(table.c.id).where(table.c.id == news_id)).first()
        return found is not None

    def news_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of `ids` are already stored (for de-duplication across restarts)."""
        self.flush()
        wanted = list(ids)
        table = self._t["news"]
        found: set[str] = set()
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = connection.execute(sa.select(table.c.id).where(table.c.id.in_(chunk)))
                found.update(row.id for row in rows)
        return found

    def news_title_keys(self, keys: Iterable[str], since: datetime) -> dict[str, datetime]:
        """Normalised titles already stored, each with its latest `received` at or after `since`.

        The news poller uses it to drop the same story arriving from a second outlet under another
        id (cross-feed de-duplication by `title_key`).
        """
        self.flush()
        wanted = sorted({key for key in keys if key})
        table = self._t["news"]
        found: dict[str, datetime] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = connection.execute(
                    sa.select(table.c.title_key, sa.func.max(table.c.received).label("latest"))
                    .where(table.c.title_key.in_(chunk), table.c.received >= since)
                    .group_by(table.c.title_key)
                )
                for row in rows:
                    latest = row.latest
                    if isinstance(latest, str):  # SQLite's max() hands back the stored text
                        latest = datetime.fromisoformat(latest)
                    if latest.tzinfo is None:
                        latest = latest.replace(tzinfo=UTC)
                    found[row.title_key] = latest
        return found

    def pending_news(self, limit: int = 1000) -> list[NewsItem]:
        """Items the model has not answered yet (it was down, or the process died first)."""
        self.flush()
        table = self._t["news"]
        query = (
            sa.select(table)
            .where(table.c.signal_status.in_(["pending", "failed"]))
            .order_by(table.c.received)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_news_from_row(row) for row in connection.execute(query)]

    def load_account(self, name: str | None = None) -> AccountState | None:
        """The fills and open orders of an account, for resuming after a restart."""
        self.flush()
        account = name or self.account
        accounts = AccountRecord.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(accounts).where(accounts.c.name == account)).first()
            if row is None:
                return None
            fills_t, orders_t = self._t["fills"], self._t["orders"]
            fills = [
                _fill_from_row(r)
                for r in connection.execute(
                    sa.select(fills_t)
                    .where(fills_t.c.account == account)
                    .order_by(fills_t.c.ts, fills_t.c.id)
                )
            ]
            open_states = [s.value for s in OrderStatus if s.is_open]
            orders = [
                _order_from_row(r)
                for r in connection.execute(
                    sa.select(orders_t)
                    .where(orders_t.c.account == account, orders_t.c.status.in_(open_states))
                    .order_by(orders_t.c.created)
                )
            ]
        exec_ids: dict[str, set[str]] = {}
        for fill in fills:
            exec_ids.setdefault(fill.client_order_id, set()).add(fill.exec_id)
        for order in orders:
            order.exec_ids = exec_ids.get(order.client_order_id, set())
        return AccountState(account, Decimal(row.initial_cash), fills, orders)

    def orders(self, account: str | None = None, limit: int = 1000) -> list[Order]:
        self.flush()
        table = self._t["orders"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.created)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_order_from_row(r) for r in connection.execute(query)]

    def fills(self, account: str | None = None) -> list[Fill]:
        self.flush()
        table = self._t["fills"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.ts, table.c.id)
        )
        with self.engine.connect() as connection:
            return [_fill_from_row(r) for r in connection.execute(query)]

    def signals(self, account: str | None = None, limit: int = 20) -> list[Signal]:
        """The newest signals first."""
        self.flush()
        table = self._t["signals"]
        query = sa.select(table).order_by(table.c.ts.desc(), table.c.id.desc()).limit(limit)
        if account:
            query = query.where(table.c.account == account)
        with self.engine.connect() as connection:
            return [_signal_from_row(r) for r in connection.execute(query)]

    def equity(self, account: str | None = None, limit: int = 1) -> list[EquitySnapshot]:
        self.flush()
        table = self._t["equity"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.ts.desc(), table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [
                EquitySnapshot(
                    ts=r.ts,
                    cash=r.cash,
                    equity=r.equity,
                    realised_pnl=r.realised_pnl,
                    unrealised_pnl=r.unrealised_pnl,
                    fees=r.fees,
                )
                for r in connection.execute(query)
            ]

    def accounts(self) -> list[str]:
        table = AccountRecord.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as connection:
            return [r.name for r in connection.execute(sa.select(table.c.name))]

    def count(self, kind: str) -> int:
        self.flush()
        table = self._t[kind]
        with self.engine.connect() as connection:
            return int(
                connection.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0
            )

    # -- feed state (the news poller's conditional GET and backoff) ---------------------------

    def feed_state(self, url: str) -> dict[str, Any] | None:
        table = FeedStateRecord.__table__  # type: ignore[attr-defined]
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(table).where(table.c.url == url)).first()
        return dict(row._mapping) if row is not None else None

    def save_feed_state(self, url: str, **values: Any) -> None:
        table = FeedStateRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            _upsert(connection, table, [{"url": url, **values}], ["url"], update=True)

    def close(self) -> None:
        self.flush()
        self.engine.dispose()


def _last_per_key(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    latest: dict[Any, dict[str, Any]] = {}
    for row in rows:
        latest[row[key]] = row
    return list(latest.values())


def _news_from_row(row: Any) -> NewsItem:
    return NewsItem(
        id=row.id,
        source=row.source,
        title=row.title,
        body=row.body,
        link=row.link,
        published=row.published,
        received=row.received,
        symbols=tuple(s for s in row.symbols.split(",") if s),
        stale=row.stale,
        undated=row.undated,
    )


def _fill_from_row(row: Any) -> Fill:
    return Fill(
        ts=row.ts,
        client_order_id=row.client_order_id,
        exec_id=row.exec_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        price=row.price,
        fee=row.fee,
        liquidity=Liquidity(row.liquidity),
        fee_currency=row.fee_currency,
    )


def _order_from_row(row: Any) -> Order:
    return Order(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        created=row.created,
        order_type=OrderType(row.order_type),
        price=row.price,
        time_in_force=TimeInForce(row.time_in_force),
        reduce_only=row.reduce_only,
        status=OrderStatus(row.status),
        venue_order_id=row.venue_order_id,
        filled_qty=row.filled_qty,
        avg_price=row.avg_price,
        fees=row.fees,
        reason=row.reason,
        updated=row.updated,
    )


def _signal_from_row(row: Any) -> Signal:
    return Signal(
        ts=row.ts,
        symbol=row.symbol_key or None,
        label=Label.parse(row.label),
        confidence=row.confidence,
        probs=(row.p_bearish, row.p_neutral, row.p_bullish),
        model_id=row.model_id,
        source=row.source,
        news_id=row.news_id,
        published=row.published,
        received=row.received,
        weight=row.weight,
        stale=row.stale,
    )


__all__ = ["AccountState", "SQLModel", "Store", "StoreError", "make_engine", "migrate"]
