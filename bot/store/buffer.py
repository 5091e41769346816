"""The write buffer: rows queued in memory, committed together in dependency order.

Why it is shaped like this:
- In a replay, writes are batched (`commit_every`) so that persistence does not dominate the run;
  a daemon's durable writes (orders before they are sent, fills as they arrive) commit at once.
- A commit that fails (a full disk, a file made read-only, a lost server) puts the buffer in a
  failed state for good: the rows of that batch are reported as lost, nothing is retried (no storm
  of errors every `commit_interval`), and the failure is reported once, to the handler the daemon
  registers (it halts trading and stops), or raised where no handler is registered. A durable
  write always raises in the failed state, so that its caller never acts on an unrecorded order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.store.errors import StoreError, StoreWriteError, explain
from bot.tables import (
    DecisionRecord,
    EquitySnapshotRecord,
    FillRecord,
    NewsRecord,
    OrderRecord,
    PositionSnapshotRecord,
    ReconciliationRecord,
    SignalRecord,
)

FailureHandler = Callable[[StoreError], None]
T = TypeVar("T")

TABLES: dict[str, sa.Table] = {
    name: model.__table__  # type: ignore[attr-defined]
    for name, model in {
        "news": NewsRecord,
        "signals": SignalRecord,
        "orders": OrderRecord,
        "fills": FillRecord,
        "positions": PositionSnapshotRecord,
        "equity": EquitySnapshotRecord,
        "reconciliations": ReconciliationRecord,
        "decisions": DecisionRecord,
    }.items()
}


def upsert(
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


class WriteBuffer:
    """Queued rows per kind; `flush` writes them in one transaction."""

    def __init__(self, engine: Engine, url: str, commit_every: int) -> None:
        self.engine = engine
        self.url = url
        self.commit_every = commit_every
        self.on_failure: FailureHandler | None = None
        self.failure: StoreError | None = None
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._pending_count = 0

    def queue(self, kind: str, row: dict[str, Any]) -> None:
        if self.failure is not None:
            return  # nothing more is written once a commit failed (see the module docstring)
        self._pending.setdefault(kind, []).append(row)
        self._pending_count += 1
        if self._pending_count >= self.commit_every:
            self.flush()

    def flush(self) -> None:
        """Write everything pending in one transaction; a failure is reported once."""
        if self.failure is not None:
            if self.on_failure is None:
                raise self.failure
            return
        if not self._pending_count:
            return
        pending, count = self._pending, self._pending_count
        self._pending, self._pending_count = {}, 0
        self.write(lambda connection: _write(connection, pending), f"{count} queued rows")

    def write(self, work: Callable[[Connection], T], what: str = "a write") -> T | None:
        """Run `work` in a transaction of its own, with the failure rules of `flush`.

        Returns None, writing nothing, once a commit has failed and a handler was told.
        """
        if self.failure is not None:
            if self.on_failure is None:
                raise self.failure
            return None
        try:
            with self.engine.begin() as connection:
                return work(connection)
        except (sa.exc.SQLAlchemyError, OSError) as error:
            cause = explain(self.url, error, "committing")
            self.failure = StoreWriteError(f"{cause}; {what} not written")
            if self.on_failure is None:
                raise self.failure from None
            self.on_failure(self.failure)
            return None

    def commit_now(self) -> None:
        """For writes that must be on disk before the caller acts: raises if they are not."""
        self.flush()
        if self.failure is not None:
            raise self.failure


def _write(connection: Connection, pending: dict[str, list[dict[str, Any]]]) -> None:
    news = TABLES["news"]
    upsert(connection, news, pending.get("news", []), ["id"], update=False)
    statuses = _last_per_key(pending.get("news_status", []), "id")  # the last one counts
    if statuses:  # one executemany, not one statement per item (7,500 in a big backtest)
        connection.execute(
            news.update()
            .where(news.c.id == sa.bindparam("b_id"))
            .values(signal_status=sa.bindparam("b_status")),
            [{"b_id": row["id"], "b_status": row["signal_status"]} for row in statuses],
        )
    signal_key = ["account", "news_id", "symbol_key", "model_id"]
    upsert(connection, TABLES["signals"], pending.get("signals", []), signal_key, update=False)
    orders = _last_per_key(pending.get("orders", []), "client_order_id")
    upsert(connection, TABLES["orders"], orders, ["client_order_id"], update=True)
    fills = pending.get("fills", [])
    upsert(connection, TABLES["fills"], fills, ["account", "exec_id"], update=False)
    upsert(connection, TABLES["decisions"], pending.get("decisions", []), ["id"], update=False)
    for kind in ("positions", "equity", "reconciliations"):
        rows = pending.get(kind, [])
        if rows:
            connection.execute(TABLES[kind].insert(), rows)


def _last_per_key(rows: Sequence[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    latest: dict[Any, dict[str, Any]] = {}
    for row in rows:
        latest[row[key]] = row
    return list(latest.values())
