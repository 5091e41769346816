"""Issue 13.1 (store side): the reconciled state is stored, snapshot by snapshot with its source,
and a store made by the first schema is brought along."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import sqlalchemy as sa

from bot.events import EquitySnapshot, PositionSnapshot
from bot.store import MIGRATIONS, Store, make_engine

T = datetime(2024, 1, 1, tzinfo=UTC)


def snapshot(ts: datetime, qty: str, cash: str) -> EquitySnapshot:
    position = PositionSnapshot(ts, "BTCUSDT", D(qty), D("42000.5"), D("0"), D("0"), D("42001"))
    return EquitySnapshot(ts, D(cash), D(cash), D("0"), D("0"), D("0"), (position,))


def test_the_venue_s_word_and_its_snapshot_round_trip_exactly(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 's.sqlite'}", account="live", run_id="r")
    assert store.last_reconciliation() is None and store.latest_snapshot() is None
    store.record_equity(snapshot(T, "0.519", "-73205.1"))  # from the fills: wrong
    store.record_reconciliation(
        T + timedelta(seconds=5), {"BTCUSDT": (D("0.319"), D("42000.5"))}, D("16794.12345678")
    )
    store.record_equity(snapshot(T + timedelta(seconds=5), "0.319", "16794.12345678"), "venue")
    store.close()

    again = Store(f"sqlite:///{tmp_path / 's.sqlite'}", account="live")
    reconciled = again.last_reconciliation()
    assert reconciled is not None and reconciled.ts == T + timedelta(seconds=5)
    assert reconciled.positions == {"BTCUSDT": (D("0.319"), D("42000.5"))}
    assert reconciled.cash == D("16794.12345678")
    latest = again.latest_snapshot()
    assert latest is not None and latest.source == "venue"
    assert latest.snapshot.cash == D("16794.12345678")
    assert [(p.symbol, p.qty, p.mark) for p in latest.snapshot.positions] == [
        ("BTCUSDT", D("0.319"), D("42001"))
    ]
    assert again.last_reconciliation("another") is None


def test_a_store_of_the_first_schema_is_upgraded_with_its_snapshots(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    url = f"sqlite:///{tmp_path / 'old.sqlite'}"
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with make_engine(url).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0001")
        connection.execute(
            sa.text(
                "insert into equity_snapshots (account, run_id, ts, cash, equity, realised_pnl, "
                "unrealised_pnl, fees) values ('old', 'r0', '2024-01-01 00:00:00', '99.5', "
                "'100.5', '0', '1', '0')"
            )
        )
    store = Store(url, account="old")
    latest = store.latest_snapshot()
    assert latest is not None and latest.source == "fills"  # all an old store could know
    assert latest.snapshot.equity == D("100.5") and latest.snapshot.positions == ()
    assert store.last_reconciliation() is None
    store.record_reconciliation(T, {}, None)
    assert store.count("reconciliations") == 1
    with store.engine.connect() as connection:
        head = connection.execute(sa.text("select version_num from alembic_version")).scalar()
    from alembic.script import ScriptDirectory

    newest = ScriptDirectory.from_config(config).get_current_head()
    assert newest is not None and int(newest) >= 4  # 0004 added decisions.model_id
    assert head == newest  # and on to the newest schema
    assert store.decisions() == []  # the decisions table came with it
