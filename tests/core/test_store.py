from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import sqlalchemy as sa

from bot.events import EquitySnapshot, Fill, Label, NewsItem, Side, Signal
from bot.orders import Order, OrderStatus
from bot.store import Store, make_engine

T = datetime(2024, 1, 1, tzinfo=UTC)


def fill(exec_id: str, qty: str = "0.5") -> Fill:
    return Fill(T, "c1", exec_id, "BTCUSDT", Side.BUY, D(qty), D("42000.1"), D("0.01234567"))


def test_orders_fills_and_signals_round_trip_exactly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    store = Store(url, account="a", run_id="r")
    store.open_account("a", "paper", D("10000"), T)
    order = Order("c1", "BTCUSDT", Side.BUY, D("1"), T, status=OrderStatus.CREATED)
    store.record_order(order)  # durable: committed before it would be sent
    with make_engine(url).connect() as c:
        assert c.execute(sa.text("select status from orders")).scalar() == "created"
    order.transition(OrderStatus.SUBMITTED)
    order.apply_fill(fill("e1"))
    store.record_order(order)
    store.record_fill(fill("e1"))
    store.record_fill(fill("e1"))  # resent: no duplicate
    signal = Signal(T, None, Label.BEARISH, 0.7, (0.7, 0.2, 0.1), "m", "src", "n1", None, T)
    store.record_signal(signal)
    store.record_signal(signal)
    store.record_equity(EquitySnapshot(T, D("1"), D("2"), D("0"), D("0"), D("0")))
    store.close()

    again = Store(url, account="a")
    state = again.load_account("a")
    assert state is not None and state.initial_cash == D("10000")
    assert [f.exec_id for f in state.fills] == ["e1"]
    assert state.fills[0].price == D("42000.1") and state.fills[0].fee == D("0.01234567")
    assert [o.status for o in state.open_orders] == [OrderStatus.PARTIALLY_FILLED]
    assert state.open_orders[0].exec_ids == {"e1"}
    assert again.count("signals") == 1
    assert again.signals("a")[0].symbol is None
    assert again.open_account("a", "paper", D("5"), T) == D("10000")  # stored cash wins


def test_news_status_and_dedup(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}", durable=False, commit_every=1000)
    item = NewsItem("n1", "s", "t", T)
    store.record_news(item, raw={"guid": "n1"})
    store.record_news(item)
    assert store.news_ids(["n1", "n2"]) == {"n1"}
    assert [i.id for i in store.pending_news()] == ["n1"]
    store.mark_news("n1", "done")
    assert store.pending_news() == []


def test_migrations_bring_an_old_store_up_to_date(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from bot.store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    engine = make_engine(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")  # the first schema ever shipped
        connection.execute(
            sa.text(
                "insert into accounts (name, mode, initial_cash, created) "
                "values ('old', 'paper', '123.45', '2024-01-01 00:00:00')"
            )
        )
    store = Store(url)  # upgrades to head
    assert store.open_account("old", "paper", D("1"), T) == D("123.45")
    with store.engine.connect() as connection:
        head = connection.execute(sa.text("select version_num from alembic_version")).scalar()
    from alembic.script import ScriptDirectory

    assert head == ScriptDirectory.from_config(config).get_current_head()


def test_the_same_store_on_postgresql() -> None:
    """Upserts, uniqueness and exact decimals hold on PostgreSQL as on SQLite."""
    from .postgres import postgres_server

    with postgres_server() as url:
        store = Store(url, account="pg", run_id="r")
        store.open_account("pg", "paper", D("10000"), T)
        order = Order("c1", "BTCUSDT", Side.BUY, D("1"), T, status=OrderStatus.CREATED)
        store.record_order(order)
        order.transition(OrderStatus.SUBMITTED)
        order.apply_fill(fill("e1"))
        store.record_order(order)
        store.record_fill(fill("e1"))
        store.record_fill(fill("e1"))
        signal = Signal(T, "BTCUSDT", Label.BULLISH, 0.7, (0.1, 0.2, 0.7), "m", "s", "n1", None, T)
        store.record_signal(signal)
        store.record_signal(signal)
        store.record_news(NewsItem("n1", "s", "t", T))
        store.record_news(NewsItem("n1", "s", "t", T))
        store.save_feed_state("http://x", etag="abc")
        store.save_feed_state("http://x", etag="def")
        store.record_reconciliation(T, {"BTCUSDT": (D("0.319"), D("42000.5"))}, D("16794.1"))
        store.close()
        again = Store(url, account="pg")
        state = again.load_account("pg")
        assert state is not None and [f.exec_id for f in state.fills] == ["e1"]
        assert state.fills[0].fee == D("0.01234567") and state.fills[0].ts == T
        assert state.open_orders[0].filled_qty == D("0.5")
        assert again.count("signals") == 1 and again.count("news") == 1
        assert (again.feed_state("http://x") or {})["etag"] == "def"
        reconciled = again.last_reconciliation()
        assert reconciled is not None and reconciled.ts == T and reconciled.cash == D("16794.1")
        assert reconciled.positions == {"BTCUSDT": (D("0.319"), D("42000.5"))}
        again.close()
