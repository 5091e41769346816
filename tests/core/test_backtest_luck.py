"""A backtest's luck figures through real replays: intervals, PSR/DSR from the trial ledger,
gross return, the lag test and the null models (bot/luck_wiring.py and its parts)."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from bot.backtest import LuckOptions
from bot.research.ledger import TrialLedger
from tests.core.luck_scenarios import backtest, lexicon_settings, write_scenario

LUCK_KEYS = (
    "sharpe_ci_low",
    "sharpe_ci_high",
    "total_return_ci_low",
    "total_return_ci_high",
    "psr",
    "dsr",
    "dsr_trials",
    "gross_return",
    "slippage_paid",
    "lag_sharpe",
)


def fast_settings(tmp: Path, **strategy: object):  # type: ignore[no-untyped-def]
    return lexicon_settings(tmp, strategy={"reevaluate_interval": 3600.0, **strategy})


def test_luck_figures_are_numbers_and_agree_with_the_run(tmp_path: Path) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=True, days=20)
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    result = backtest(
        tmp_path, news, bars, "out", LuckOptions(ledger_url=ledger), fast_settings(tmp_path)
    )
    m = result.metrics
    for key in LUCK_KEYS:
        assert isinstance(m[key], float), key
    assert m["sharpe_ci_low"] <= m["sharpe"] <= m["sharpe_ci_high"]  # type: ignore[operator]
    assert m["total_return_ci_low"] <= m["total_return"] <= m["total_return_ci_high"]  # type: ignore[operator]
    assert m["dsr_trials"] == 1.0 and m["dsr"] == m["psr"]  # N = 1: DSR is PSR(0)
    assert 0.5 < m["psr"] <= 1.0  # type: ignore[operator]
    costs = (m["fees_paid"] + m["slippage_paid"]) / 10_000.0  # type: ignore[operator]
    assert m["slippage_paid"] > 0  # type: ignore[operator]
    assert m["gross_return"] == pytest.approx(m["total_return"] + costs, abs=1e-9)  # type: ignore[operator]
    # the ledger is the given database, not the run's own store
    assert TrialLedger.open(ledger).rows() == 1
    run_store = sa.create_engine(f"sqlite:///{tmp_path / 'out' / 'store.sqlite'}")
    assert not sa.inspect(run_store).has_table("research_trials")


def test_the_ledger_counts_distinct_configurations_per_data(tmp_path: Path) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=True, days=10)
    options = LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'ledger.sqlite'}", lag=False)

    def trials(out: str, **strategy: object) -> float:
        settings = fast_settings(tmp_path, **strategy)
        value = backtest(tmp_path, news, bars, out, options, settings).metrics["dsr_trials"]
        assert isinstance(value, float)
        return value

    assert trials("a") == 1.0
    assert trials("b") == 1.0  # the same configuration again is the same trial
    assert trials("c", threshold=0.7) == 2.0
    assert trials("d", threshold=0.8) == 3.0
    other_news, other_bars = write_scenario(tmp_path / "other", informative=True, days=10, seed=7)
    other = backtest(tmp_path, other_news, other_bars, "e", options, fast_settings(tmp_path))
    assert other.metrics["dsr_trials"] == 1.0  # other data: its own count
    assert "lag test skipped (--no-lag)" in other.metrics["notes"]  # type: ignore[operator]
    assert "lag_sharpe" not in other.metrics


def test_a_result_living_within_one_bar_is_flagged_by_the_lag_test(tmp_path: Path) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=True, days=20, drift_bars=1)
    options = LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag_minutes=180)
    m = backtest(tmp_path, news, bars, "out", options, fast_settings(tmp_path)).metrics
    assert m["sharpe"] > 1  # type: ignore[operator]
    assert m["lag_sharpe"] < m["sharpe"] / 2  # type: ignore[operator]
    assert isinstance(m["lag_minutes_sharpe"], float) and m["lag_minutes"] == 180.0
    assert any("when every decision comes 60 min later" in n for n in m["notes"])  # type: ignore[union-attr]


def test_a_result_lasting_hours_survives_the_lag_test(tmp_path: Path) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=True, days=20, drift_bars=8)
    options = LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}")
    m = backtest(tmp_path, news, bars, "out", options, fast_settings(tmp_path)).metrics
    assert m["sharpe"] / 2 < m["lag_sharpe"] < m["sharpe"]  # type: ignore[operator]
    assert not any("min later" in n for n in m["notes"])  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.parametrize("informative", [True, False])
def test_null_p_values_tell_informative_labels_from_random_ones(
    tmp_path: Path, informative: bool
) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=informative, days=30)
    options = LuckOptions(
        ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False, null_trials=19
    )
    m = backtest(tmp_path, news, bars, "out", options, fast_settings(tmp_path)).metrics
    assert m["null_trials"] == 19.0
    if informative:  # no permutation reaches the real Sharpe: the smallest p-value, 1/20
        assert m["null_p_value"] == pytest.approx(0.05)
        assert m["coin_flip_p_value"] == pytest.approx(0.05)
    else:
        assert m["null_p_value"] > 0.2 and m["coin_flip_p_value"] > 0.2  # type: ignore[operator]


def test_training_overlap_comes_from_the_manifest_span(tmp_path: Path) -> None:
    import json
    import shutil
    from datetime import UTC, datetime

    from bot.luck_report import training_overlap, training_span
    from bot.manifest import MANIFEST_NAME, default_model_dir

    folder = tmp_path / "model"
    folder.mkdir()
    manifest = json.loads((default_model_dir() / MANIFEST_NAME).read_text())
    manifest.setdefault("data", {})["span"] = {"start": "2024-01-05", "end": "2024-02-01T12:00Z"}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    settings = lexicon_settings(tmp_path).with_overrides(
        model={"backend": "embedded", "path": str(folder)}
    )
    span = training_span(settings)
    assert span == (datetime(2024, 1, 5, tzinfo=UTC), datetime(2024, 2, 1, 12, tzinfo=UTC))
    inside, note = training_overlap(span, datetime(2024, 1, 1, tzinfo=UTC), span[0])
    assert inside == 1.0 and note.startswith("TRAINING OVERLAP")
    after = training_overlap(
        span, datetime(2024, 2, 2, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    )
    assert after == (0.0, "")
    shutil.rmtree(folder)  # no manifest at all: unknown
    assert training_span(settings) is None


def test_an_unknown_training_span_is_zero_and_noted(tmp_path: Path) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=True, days=5)
    options = LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False)
    m = backtest(tmp_path, news, bars, "out", options, fast_settings(tmp_path)).metrics
    assert m["training_overlap"] == 0.0
    assert any("training span is unknown" in n for n in m["notes"])  # type: ignore[union-attr]


def test_null_figures_do_not_depend_on_the_number_of_processes(tmp_path: Path) -> None:
    news, bars = write_scenario(tmp_path / "in", informative=False, days=8)

    def nulls(workers: int) -> dict[str, object]:
        options = LuckOptions(
            ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}",
            lag=False,
            null_trials=3,
            null_workers=workers,
        )
        m = backtest(tmp_path, news, bars, f"o{workers}", options, fast_settings(tmp_path)).metrics
        return {k: m[k] for k in ("null_p_value", "coin_flip_p_value", "null_trials")}

    assert nulls(1) == nulls(2)
