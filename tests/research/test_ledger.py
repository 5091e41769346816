"""The trial ledger on real SQLite files and a throwaway PostgreSQL server, with two writers."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from bot.research.ledger import TrialLedger, config_hash, data_hash

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_n_is_distinct_configurations_and_v_their_variance(tmp_path: Path) -> None:
    ledger = TrialLedger.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    data, other = "d" * 64, "e" * 64
    for config, sharpe in (("a", 0.05), ("b", 0.10), ("c", -0.02), ("a", 0.07)):
        ledger.record(
            kind="backtest",
            data=data,
            config=config,
            daily_sharpe=sharpe,
            n_days=200,
            recorded_at=WHEN,
        )
    ledger.record(
        kind="hyperopt", data=other, config="a", daily_sharpe=1.0, n_days=10, recorded_at=WHEN
    )
    count = ledger.count(data)
    assert count.trials == 3
    # "a" ran twice: it counts once, at its mean 0.06.
    assert sorted(count.sharpes) == pytest.approx([-0.02, 0.06, 0.10])
    assert count.variance == pytest.approx(np.var([0.06, 0.10, -0.02], ddof=1))
    assert ledger.count(other).trials == 1 and ledger.count(other).variance == 0.0
    assert ledger.count("f" * 64).trials == 0
    assert ledger.rows() == 5 and ledger.rows(data) == 4


def test_the_table_survives_reopening(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    TrialLedger.open(url).record(
        kind="backtest", data="x", config="y", daily_sharpe=0.1, n_days=5, recorded_at=WHEN
    )
    assert TrialLedger.open(url).rows() == 1


def test_bad_trials_are_refused_with_the_reason(tmp_path: Path) -> None:
    ledger = TrialLedger.open(f"sqlite:///{tmp_path / 'store.sqlite'}")
    with pytest.raises(ValueError, match="kind"):
        ledger.record(
            kind="live", data="x", config="y", daily_sharpe=0.1, n_days=5, recorded_at=WHEN
        )
    with pytest.raises(ValueError, match="finite"):
        ledger.record(
            kind="backtest",
            data="x",
            config="y",
            daily_sharpe=float("nan"),
            n_days=5,
            recorded_at=WHEN,
        )
    with pytest.raises(ValueError, match="timezone"):
        ledger.record(
            kind="backtest",
            data="x",
            config="y",
            daily_sharpe=0.1,
            n_days=5,
            recorded_at=datetime(2026, 1, 1),
        )
    assert ledger.rows() == 0


def test_data_hash_is_the_contents_and_the_window(tmp_path: Path) -> None:
    news, bars = tmp_path / "news.csv", tmp_path / "bars.json"
    news.write_text("timestamp,title\n2021-10-01T00:00:00Z,hello\n")
    bars.write_text("[]")
    start, end = datetime(2021, 10, 1, tzinfo=UTC), datetime(2022, 7, 10, tzinfo=UTC)
    base = data_hash([news, bars], start, end)
    copy = tmp_path / "elsewhere.csv"
    copy.write_bytes(news.read_bytes())
    assert data_hash([bars, copy], start, end) == base  # same contents, any order, any path
    assert data_hash([news, bars], start, None) != base
    news.write_text("timestamp,title\n2021-10-01T00:00:00Z,hellO\n")
    assert data_hash([news, bars], start, end) != base


def test_config_hash_ignores_key_order_and_sees_values() -> None:
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})
    with pytest.raises(TypeError, match="cannot be hashed"):
        config_hash({"a": object()})


def _write_trials(url: str, worker: int, count: int) -> None:
    ledger = TrialLedger.open(url)
    for index in range(count):
        ledger.record(
            kind="hyperopt",
            data="shared",
            config=f"w{worker}-{index}",
            daily_sharpe=0.01 * index,
            n_days=100,
            recorded_at=WHEN,
        )


def _two_writers(url: str, count: int = 40) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_trials, args=(url, w, count)) for w in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    ledger = TrialLedger.open(url)
    assert ledger.rows("shared") == 2 * count
    assert ledger.count("shared").trials == 2 * count


@pytest.mark.slow
def test_two_processes_write_one_sqlite_ledger(tmp_path: Path) -> None:
    # Both create the table on first use, at the same time, and then insert interleaved.
    _two_writers(f"sqlite:///{tmp_path / 'store.sqlite'}")


@pytest.mark.slow
def test_two_processes_write_one_postgresql_ledger() -> None:
    from tests.core.postgres import postgres_server

    with postgres_server() as url:
        _two_writers(url)
