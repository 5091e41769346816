"""The console's reads, on a connection of its own that cannot write.

The daemon's `Store` commits its write buffer before every read (so a read sees every write);
reading through it from the console would change when the daemon commits, from another thread.
So the console opens the same database again, read-only (SQLite `mode=ro` plus `query_only`;
a server database's session is set read-only), and asks only paged, indexed questions: the
newest rows first, `limit` rows at most, the next page by the last row's (time, id).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.events import Side, iso
from bot.store.buffer import TABLES
from bot.store.database import sqlite_path

MAX_PAGE = 500


def read_only_engine(url: str) -> Engine:
    """An engine on `url` that refuses writes."""
    path = sqlite_path(url)
    if url.startswith("sqlite") and path is not None:
        engine = sa.create_engine(
            f"sqlite:///file:{path.resolve()}?mode=ro&uri=true",
            connect_args={"timeout": 5, "check_same_thread": False},
        )

        @sa.event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _: Any) -> None:
            dbapi_connection.execute("PRAGMA query_only=ON")

        return engine
    engine = sa.create_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "postgresql":

        @sa.event.listens_for(engine, "connect")
        def _read_only_session(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
            cursor.close()

    return engine


def plain(value: Any) -> Any:
    """A column value as JSON: money and quantities as strings, times in ISO-8601 UTC."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso(value)
    return value


def _row(row: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: plain(v) for k, v in row._mapping.items() if k not in skip}


def page_size(limit: int) -> int:
    return max(1, min(MAX_PAGE, limit))


class ConsoleQueries:
    """Paged, newest-first reads of one account's journal."""

    def __init__(self, url: str, account: str) -> None:
        self.engine = read_only_engine(url)
        self.account = account

    def close(self) -> None:
        self.engine.dispose()

    def _rows(self, query: sa.Executable) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(query))

    def decisions(
        self,
        limit: int = 50,
        *,
        before: tuple[datetime, str] | None = None,
        outcome: str = "",
        source: str = "",
        symbol: str = "",
    ) -> list[dict[str, Any]]:
        """Decision records with their headline, newest first; `before` is the (ts, id) of the
        last row of the previous page."""
        d, news = TABLES["decisions"], TABLES["news"]
        query = (
            sa.select(d, news.c.title, news.c.link)
            .select_from(d.outerjoin(news, news.c.id == d.c.news_id))
            .where(d.c.account == self.account)
        )
        if before is not None:
            ts, last_id = before
            query = query.where(sa.or_(d.c.ts < ts, sa.and_(d.c.ts == ts, d.c.id < last_id)))
        if outcome:
            query = query.where(d.c.outcome == outcome)
        if source:
            query = query.where(d.c.source == source)
        if symbol:
            query = query.where(d.c.symbol == symbol)
        query = query.order_by(d.c.ts.desc(), d.c.id.desc()).limit(page_size(limit))
        return [_decision(r) for r in self._rows(query)]

    def decisions_for_orders(self, symbol: str, limit: int = 5) -> list[dict[str, Any]]:
        """The latest headlines that placed an order in `symbol`: what a position stands on."""
        return self.decisions(limit, outcome="order", symbol=symbol)

    def orders(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        o = TABLES["orders"]
        query = (
            sa.select(o)
            .where(o.c.account == self.account)
            .order_by(o.c.created.desc())
            .limit(page_size(limit))
            .offset(max(0, offset))
        )
        return [_row(r, ("account",)) for r in self._rows(query)]

    def fills(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Fills with their order's decision: slippage against a limit price, in basis points
        (a market order has no price of its own to slip from) and the news-to-fill latency."""
        f, o, d = TABLES["fills"], TABLES["orders"], TABLES["decisions"]
        query = (
            sa.select(f, o.c.price.label("order_price"), o.c.decision_id, d.c.received)
            .select_from(
                f.outerjoin(o, o.c.client_order_id == f.c.client_order_id).outerjoin(
                    d, d.c.id == o.c.decision_id
                )
            )
            .where(f.c.account == self.account)
            .order_by(f.c.ts.desc(), f.c.id.desc())
            .limit(page_size(limit))
            .offset(max(0, offset))
        )
        result = []
        for row in self._rows(query):
            item = _row(row, ("account", "received", "order_price"))
            price, reference = row.price, row.order_price
            slip = None
            if reference:
                sign = 1 if Side(row.side) is Side.BUY else -1
                slip = float(sign * (price - reference) / reference * 10_000)
            item["slippage_bps"] = None if slip is None else round(slip, 2)
            item["news_to_fill_s"] = (
                None if row.received is None else round((row.ts - row.received).total_seconds(), 3)
            )
            result.append(item)
        return result

    def equity(self, limit: int = 2000) -> list[tuple[str, str]]:
        """Stored equity snapshots, oldest first (the newest `limit`)."""
        e = TABLES["equity"]
        query = (
            sa.select(e.c.ts, e.c.equity)
            .where(e.c.account == self.account)
            .order_by(e.c.ts.desc(), e.c.id.desc())
            .limit(page_size(limit) if limit <= MAX_PAGE else limit)
        )
        return [(iso(r.ts), str(r.equity)) for r in reversed(self._rows(query))]

    def last_reconciliation(self) -> str | None:
        r = TABLES["reconciliations"]
        query = (
            sa.select(r.c.ts).where(r.c.account == self.account).order_by(r.c.ts.desc()).limit(1)
        )
        rows = self._rows(query)
        return iso(rows[0].ts) if rows else None

    def decision_sources(self) -> list[str]:
        news = TABLES["news"]
        return [r.source for r in self._rows(sa.select(news.c.source).distinct().limit(200))]


def _decision(row: Any) -> dict[str, Any]:
    item = _row(row, ("account",))
    item["headline"] = item.pop("title", None) or ""
    return item
