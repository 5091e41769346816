"""The trading journal: accounts, runs, signals, orders, fills and position/equity snapshots.

Orders are written and committed *before* they are sent, under their client order id, so that
after a crash the venue's view can be reconciled against ours; when `durable`, fills commit as
they arrive too. Fills are unique per (account, exec id) and signals per (account, news id,
symbol, model id): writing one twice after a restart is a no-op, never a duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.events import Decision, EquitySnapshot, Fill, PositionSnapshot, Signal
from bot.orders import Order, OrderStatus
from bot.store.buffer import TABLES, WriteBuffer
from bot.store.rows import (
    decision_from_row,
    decision_row,
    equity_from_row,
    equity_row,
    fill_from_row,
    fill_row,
    order_from_row,
    order_row,
    position_from_row,
    position_row,
    signal_from_row,
    signal_row,
    venue_positions,
    venue_positions_text,
)
from bot.tables import AccountRecord, RunRecord

_ACCOUNTS: sa.Table = AccountRecord.__table__  # type: ignore[attr-defined]
_RUNS: sa.Table = RunRecord.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Reconciliation:
    """The venue's word at one reconciliation: what `lorabot status` trusts for a live account."""

    ts: datetime
    positions: dict[str, tuple[Decimal, Decimal]]  # symbol -> (signed qty, average price)
    cash: Decimal | None


@dataclass(frozen=True)
class StoredSnapshot:
    """An equity snapshot (positions included) and its source: "fills" or "venue"."""

    snapshot: EquitySnapshot
    source: str


@dataclass(frozen=True)
class AccountState:
    """What a restart resumes from: the fills (positions and cash follow) and open orders."""

    name: str
    initial_cash: Decimal
    fills: list[Fill]
    open_orders: list[Order]


class TradingJournal:
    """Everything that happened to an account, on a shared write buffer."""

    def __init__(
        self, buffer: WriteBuffer, account: str = "default", run_id: str = "", durable: bool = True
    ) -> None:
        self.buffer = buffer
        self.account = account
        self.run_id = run_id
        self.durable = durable

    # -- accounts and runs ------------------------------------------------------------------

    def open_account(self, name: str, mode: str, initial_cash: Decimal, now: datetime) -> Decimal:
        """Create the account on first use; return its initial cash (the stored one wins)."""

        def work(connection: Connection) -> Decimal:
            row = connection.execute(sa.select(_ACCOUNTS).where(_ACCOUNTS.c.name == name)).first()
            if row is not None:
                return Decimal(row.initial_cash)
            connection.execute(
                _ACCOUNTS.insert(),
                {"name": name, "mode": mode, "initial_cash": initial_cash, "created": now},
            )
            return initial_cash

        stored = self.buffer.write(work, f"account {name!r}")
        return initial_cash if stored is None else stored

    def start_run(self, run_id: str, kind: str, now: datetime, config: dict[str, Any]) -> None:
        self.run_id = run_id
        row = {
            "id": run_id,
            "kind": kind,
            "account": self.account,
            "started": now,
            "status": "running",
            "config_json": json.dumps(config, default=str),
        }
        self.buffer.write(lambda c: c.execute(_RUNS.insert(), row), f"run {run_id}")

    def end_run(self, now: datetime, status: str = "finished") -> None:
        self.buffer.flush()
        update = _RUNS.update().where(_RUNS.c.id == self.run_id)
        values = {"ended": now, "status": status}
        self.buffer.write(lambda c: c.execute(update, values), f"the end of run {self.run_id}")

    # -- writes -----------------------------------------------------------------------------

    def record_signal(self, signal: Signal) -> None:
        self.buffer.queue("signals", signal_row(signal, self.account, self.run_id))

    def record_decision(self, decision: Decision) -> None:
        """A decision record (batched: it explains an order, which is committed on its own)."""
        self.buffer.queue("decisions", decision_row(decision, self.account, self.run_id))

    def record_order(self, order: Order) -> None:
        """Insert or update an order; committed at once when durable (before it is sent)."""
        self.buffer.queue("orders", order_row(order, self.account, self.run_id))
        if self.durable:
            self.buffer.commit_now()

    def record_fill(self, fill: Fill) -> None:
        self.buffer.queue("fills", fill_row(fill, self.account, self.run_id))
        if self.durable:
            self.buffer.commit_now()

    def record_equity(self, snapshot: EquitySnapshot, source: str | None = None) -> None:
        """A snapshot of cash, equity and positions; its source ("venue" right after
        reconciling) is the snapshot's own unless given."""
        source = source or snapshot.source
        self.buffer.queue("equity", equity_row(snapshot, self.account, self.run_id, source))
        for position in snapshot.positions:
            self.record_position(position, source)

    def record_position(self, snapshot: PositionSnapshot, source: str = "fills") -> None:
        self.buffer.queue("positions", position_row(snapshot, self.account, self.run_id, source))

    def record_reconciliation(
        self, ts: datetime, positions: Mapping[str, tuple[Decimal, Decimal]], cash: Decimal | None
    ) -> None:
        """What the venue said at a reconciliation (symbol -> signed qty, average price; its
        cash when known); committed at once when durable, as it is the account's truth."""
        row = {
            "account": self.account,
            "run_id": self.run_id,
            "ts": ts,
            "cash": cash,
            "positions": venue_positions_text(positions),
        }
        self.buffer.queue("reconciliations", row)
        if self.durable:
            self.buffer.commit_now()

    # -- reads ------------------------------------------------------------------------------

    def load_account(self, name: str | None = None) -> AccountState | None:
        """The fills and open orders of an account, for resuming after a restart."""
        self.buffer.flush()
        account = name or self.account
        fills_t, orders_t = TABLES["fills"], TABLES["orders"]
        open_states = [s.value for s in OrderStatus if s.is_open]
        with self.buffer.engine.connect() as connection:
            row = connection.execute(
                sa.select(_ACCOUNTS).where(_ACCOUNTS.c.name == account)
            ).first()
            if row is None:
                return None
            fills = [
                fill_from_row(r)
                for r in connection.execute(
                    sa.select(fills_t)
                    .where(fills_t.c.account == account)
                    .order_by(fills_t.c.ts, fills_t.c.id)
                )
            ]
            orders = [
                order_from_row(r)
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
        table = TABLES["orders"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.created)
            .limit(limit)
        )
        return [order_from_row(r) for r in self._read(query)]

    def fills(self, account: str | None = None) -> list[Fill]:
        table = TABLES["fills"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.ts, table.c.id)
        )
        return [fill_from_row(r) for r in self._read(query)]

    def signals(self, account: str | None = None, limit: int = 20) -> list[Signal]:
        """The newest signals first."""
        table = TABLES["signals"]
        query = sa.select(table).order_by(table.c.ts.desc(), table.c.id.desc()).limit(limit)
        if account:
            query = query.where(table.c.account == account)
        return [signal_from_row(r) for r in self._read(query)]

    def decisions(
        self,
        account: str | None = None,
        limit: int = 20,
        *,
        before: datetime | None = None,
        outcome: str | None = None,
        source: str | None = None,
    ) -> list[Decision]:
        """Decision records, newest first; `before` pages back (an indexed range, so the first
        page of a long-running account is as fast as of a new one)."""
        table = TABLES["decisions"]
        query = sa.select(table).where(table.c.account == (account or self.account))
        if before is not None:
            query = query.where(table.c.ts < before)
        if outcome:
            query = query.where(table.c.outcome == outcome)
        if source:
            query = query.where(table.c.source == source)
        query = query.order_by(table.c.ts.desc(), table.c.id.desc()).limit(limit)
        return [decision_from_row(r) for r in self._read(query)]

    def equity(self, account: str | None = None, limit: int = 1) -> list[EquitySnapshot]:
        table = TABLES["equity"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.ts.desc(), table.c.id.desc())
            .limit(limit)
        )
        return [equity_from_row(r) for r in self._read(query)]

    def last_reconciliation(self, account: str | None = None) -> Reconciliation | None:
        """The venue's word at the account's latest reconciliation; None if never reconciled."""
        table = TABLES["reconciliations"]
        query = (
            sa.select(table)
            .where(table.c.account == (account or self.account))
            .order_by(table.c.ts.desc(), table.c.id.desc())
            .limit(1)
        )
        rows = self._read(query)
        if not rows:
            return None
        row = rows[0]
        return Reconciliation(row.ts, venue_positions(row.positions), row.cash)

    def latest_snapshot(self, account: str | None = None) -> StoredSnapshot | None:
        """The newest equity snapshot with its positions and where its numbers came from."""
        equity_t, positions_t = TABLES["equity"], TABLES["positions"]
        name = account or self.account
        rows = self._read(
            sa.select(equity_t)
            .where(equity_t.c.account == name)
            .order_by(equity_t.c.ts.desc(), equity_t.c.id.desc())
            .limit(1)
        )
        if not rows:
            return None
        row = rows[0]
        positions = self._read(
            sa.select(positions_t)
            .where(
                positions_t.c.account == name,
                positions_t.c.run_id == row.run_id,
                positions_t.c.ts == row.ts,
            )
            .order_by(positions_t.c.symbol)
        )
        snapshot = replace(
            equity_from_row(row), positions=tuple(position_from_row(p) for p in positions)
        )
        return StoredSnapshot(snapshot, row.source)

    def accounts(self) -> list[str]:
        return [r.name for r in self._read(sa.select(_ACCOUNTS.c.name))]

    def count(self, kind: str) -> int:
        """Rows of one kind: news, signals, orders, fills, positions, equity, reconciliations."""
        rows = self._read(sa.select(sa.func.count()).select_from(TABLES[kind]))
        return int(rows[0][0] or 0)

    def _read(self, query: sa.Executable) -> list[Any]:
        """Rows of `query`, after committing what is queued so that a read sees every write."""
        self.buffer.flush()
        with self.buffer.engine.connect() as connection:
            return list(connection.execute(query))
