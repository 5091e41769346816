"""An impact model is a SentimentModel: saved, reloaded, the same answers; served in a backtest
through `[model] path`, where its market contexts come from the bars replayed before each item."""

from __future__ import annotations

import asyncio
import csv
import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from adapters.model.impact import ImpactModel
from bot import assemble
from bot.backtest import LuckOptions, run_backtest
from bot.config import Settings
from bot.protocols import MarketAwareModel, SentimentModel
from bot.signals import context_key
from training.impact.cli import ImpactRequest, run
from training.impact.features import BarWindow, MarketBars, compute_features, contexts_of
from training.impact.heads import HeadSettings

from .conftest import make_tiny_config
from .files import write_momentum_files

SPLIT = datetime(2022, 3, 10, tzinfo=UTC)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("impact")
    news, bars, _ = write_momentum_files(folder)
    cfg = make_tiny_config(base=str(tiny_bert), method="lora", epochs=1, patience=0)
    out = folder / "out"
    request = ImpactRequest(news=news, bars={"BTCUSDT": bars}, out=out, split_date=SPLIT)
    run(Settings(), cfg, request, head=HeadSettings(epochs=60), echo=lambda _: None)
    return {"news": news, "bars": bars, "out": out}


def _predictions(out: Path) -> list[dict[str, str]]:
    with (out / "impact_predictions.csv").open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _market(bars_path: Path) -> MarketBars:
    return MarketBars.from_bars(assemble.bars_file(bars_path, "BTCUSDT"), "BTCUSDT")


@pytest.mark.parametrize("kind", ["numbers", "fusion"])
def test_saved_reloaded_same_predictions(trained: dict[str, Path], kind: str) -> None:
    model = ImpactModel(trained["out"] / kind)
    assert isinstance(model, SentimentModel) and isinstance(model, MarketAwareModel)
    rows = _predictions(trained["out"])
    received = np.array([int(datetime.fromisoformat(r["received"]).timestamp()) for r in rows])
    features = compute_features(_market(trained["bars"]), received, model.spec)
    texts = [r["text"] for r in rows]
    asyncio.run(model.prepare(texts))
    answers = model.classify_in_context(texts, contexts_of(model.spec.names, features))
    expected = np.array([[float(r[f"{kind}_p_{c}"]) for c in ("down", "flat", "up")] for r in rows])
    assert np.allclose([a.probs for a in answers], expected, atol=1e-6)
    assert [int(a.label) for a in answers] == list(expected.argmax(axis=1))
    assert all(a.model_id == model.model_id for a in answers)
    assert model.model_id == ImpactModel(trained["out"] / kind).model_id
    # without a context (plain `classify`) it still answers, from the training means
    plain = asyncio.run(model.classify(texts[:3]))
    assert len(plain) == 3 and all(abs(sum(p.probs) - 1) < 1e-9 for p in plain)


def test_served_in_a_backtest_through_model_path(trained: dict[str, Path], tmp_path: Path) -> None:
    folder = trained["out"] / "numbers"
    settings = Settings().with_overrides(
        model={"path": str(folder), "cache": False},
        strategy={"reevaluate_interval": 3600.0},
    )
    assert isinstance(assemble.build_model(settings), ImpactModel)
    result = run_backtest(
        settings,
        bars_path=trained["bars"],
        news_path=trained["news"],
        out_dir=tmp_path / "bt",
        start=SPLIT,  # the bars before it still reach the model's features (not the engine)
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False),
    )
    service = result.parts.signals
    assert service.market is not None and isinstance(service.market.features, BarWindow)
    model = result.parts.model
    # each test item's answer in the backtest is the trained model's, on the features of the
    # bars released before it
    rows = _predictions(trained["out"])
    received = np.array([int(datetime.fromisoformat(r["received"]).timestamp()) for r in rows])
    spec = ImpactModel(folder).spec
    features = compute_features(_market(trained["bars"]), received, spec)
    for row, context in zip(rows, contexts_of(spec.names, features), strict=True):
        answer = service.cache.get(model.model_id, context_key(row["text"], context))
        assert answer is not None, row["received"]
        expected = [float(row[f"numbers_p_{c}"]) for c in ("down", "flat", "up")]
        assert np.allclose(answer.probs, expected, atol=1e-6)
    assert result.metrics["n_trades"] > 0
    signals = _signal_rows(result.out_dir)
    assert signals and all(m.startswith("impact-numbers-") for _, m in signals)
    assert {"bullish", "bearish"} <= {label for label, _ in signals}


def _signal_rows(out: Path) -> list[tuple[str, str]]:
    """(label, model id) of every signal the backtest's store journalled."""
    db = sqlite3.connect(str(out / "store.sqlite"))
    try:
        return db.execute("SELECT label, model_id FROM signals").fetchall()
    finally:
        db.close()


def test_report_is_documented_json(trained: dict[str, Path]) -> None:
    report = json.loads((trained["out"] / "impact_report.json").read_text())
    for name in ("text", "numbers", "fusion"):
        assert set(report["models"][name]) == {
            "accuracy",
            "macro_f1",
            "ic",
            "ic_ci_low",
            "ic_ci_high",
            "n_test",
        }


def test_judged_by_lorabot_analyze(trained: dict[str, Path]) -> None:
    """`lorabot analyze` through the impact model: each item read with the bars before it, so
    its up calls are followed by the +3% move and its down calls by the -3% one."""
    from bot.research.run_analysis import AnalysisRequest, run_analysis

    settings = Settings().with_overrides(
        model={"path": str(trained["out"] / "numbers"), "cache": False}
    )
    request = AnalysisRequest(
        news_path=trained["news"], bars={"BTCUSDT": trained["bars"]}, horizons=("4h",)
    )
    document = run_analysis(settings, request).document
    bullish, bearish = document["label"]["bullish"]["4h"], document["label"]["bearish"]["4h"]
    assert bullish["n"] > 20 and bearish["n"] > 20
    assert bullish["ci_low_bps"] > 100 and bearish["ci_high_bps"] < -100
    assert document["inputs"]["model_id"].startswith("impact-numbers-")


def test_an_impact_model_beside_the_lexicon(trained: dict[str, Path], tmp_path: Path) -> None:
    """`[[model.extra]]` names the impact model: it still reads the bars replayed before each
    item (those before `--from` too) while the lexicon, first, reads the text alone."""
    folder = trained["out"] / "numbers"
    settings = Settings().with_overrides(
        model={"backend": "lexicon", "cache": False, "extra": [{"path": str(folder)}]},
        strategy={"reevaluate_interval": 3600.0},
    )
    result = run_backtest(
        settings,
        bars_path=trained["bars"],
        news_path=trained["news"],
        out_dir=tmp_path / "bt",
        start=SPLIT,
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False),
    )
    service = result.parts.signals
    assert service.market is None and service.reads_bars
    impact = service.readers[1].model
    rows = _predictions(trained["out"])
    received = np.array([int(datetime.fromisoformat(r["received"]).timestamp()) for r in rows])
    spec = ImpactModel(folder).spec
    features = compute_features(_market(trained["bars"]), received, spec)
    for row, context in zip(rows, contexts_of(spec.names, features), strict=True):
        answer = service.cache.get(impact.model_id, context_key(row["text"], context))
        assert answer is not None, row["received"]
        expected = [float(row[f"numbers_p_{c}"]) for c in ("down", "flat", "up")]
        assert np.allclose(answer.probs, expected, atol=1e-6)
    stored = {m for _, m in _signal_rows(result.out_dir)}
    assert stored == {result.parts.model.model_id, impact.model_id}


def test_the_acceptance_backtests_bench(trained: dict[str, Path], tmp_path: Path) -> None:
    """bench/impact_backtests.py replays a trained run's models over its own test span."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "impact_backtests.py"), "--run", str(trained["out"]),
         "--news", str(trained["news"]), "--bars", str(trained["bars"]), "--out",
         str(tmp_path / "bt"), "--null", "2", "--models", "numbers"],
        env={**os.environ, "PYTHONPATH": str(root)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads((tmp_path / "bt" / "impact_backtests.json").read_text())
    row = document["models"]["numbers"]
    assert row["model_id"].startswith("impact-numbers-") and row["n_trades"] > 0
    assert row["sharpe_ci_low"] <= row["sharpe"] <= row["sharpe_ci_high"]
    assert row["null_p_value"] is not None
    assert document["span"][0] == "2022-03-10T04:00:00+00:00"
    assert "| numbers |" in done.stdout
