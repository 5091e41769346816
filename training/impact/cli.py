"""`lorabot train --task impact`: read the news and bars, label, split, train, score, report.

`run` is the one function the command shell hands over to. Bad input is one clear line each
(`UserError` / `InputError`): a horizon that is not a whole number of bars (shorter than one bar
included), a `--symbol` without bars, a bars file with none, news that the bars do not cover
(how many items were left out, and why; an error only when none is left).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot import assemble
from bot.config import Settings, TrainingConfig
from bot.errors import InputError, UserError
from bot.events import NewsItem
from bot.research.timeline import parse_horizon, spell
from bot.symbols import SymbolTable
from training.impact.dataset import ImpactData, build_dataset, describe_drops
from training.impact.features import FeatureSpec, MarketBars
from training.impact.heads import HeadSettings
from training.impact.labels import LabelOptions
from training.impact.manifest import IMPACT_MANIFEST
from training.impact.report import (
    PREDICTIONS_CSV,
    edge_by_label,
    score,
    write_predictions,
    write_report,
)
from training.impact.run import MODELS, Outcome, train_folds
from training.impact.split import Fold, default_split, split_at, walk_forward


@dataclass(frozen=True)
class ImpactRequest:
    news: Path
    bars: Mapping[str, Path]  # symbol -> bars file, the first symbol first
    out: Path
    symbol: str | None = None
    horizon: str = "4h"
    features: tuple[str, ...] = ("returns", "volatility", "volume")
    threshold: float = 0.5
    split_date: datetime | None = None
    walk_forward: str | None = None
    embargo: str | None = None  # default: the horizon
    models: tuple[str, ...] = MODELS
    skip_bad_rows: bool = False
    progress: bool = False
    command: str = ""


def run(
    settings: Settings,
    cfg: TrainingConfig,
    request: ImpactRequest,
    *,
    head: HeadSettings | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Everything `--task impact` does; returns the impact_report.json document."""
    began = time.perf_counter()
    horizon_s = _seconds("--horizon", request.horizon)
    embargo_s = _seconds("--embargo", request.embargo) if request.embargo else horizon_s
    unknown = [m for m in request.models if m not in MODELS]
    if unknown or not request.models:
        raise UserError(f"--impact-models: expected some of {', '.join(MODELS)}")
    try:
        spec = FeatureSpec(tuple(request.features), horizon_s)
    except ValueError as error:
        raise UserError(str(error)) from None
    symbols = SymbolTable.from_settings(settings)
    symbol, bars = read_market(request, settings)
    try:
        bars.research().check_horizon(request.horizon, horizon_s)
    except ValueError as error:
        raise UserError(f"--horizon: {symbol}: {error}") from None
    news = assemble.read_news_file(request.news, symbols, skip_bad_rows=request.skip_bad_rows)
    options = LabelOptions(horizon_s=horizon_s, threshold=request.threshold)
    data = build_dataset(news, bars, spec, options)
    left_out = describe_drops(data.counts)
    if left_out:
        echo(f"warning: {left_out}")
    folds = make_folds(data, request, embargo_s)
    describe = {
        "news": str(request.news),
        "bars": {s: str(p) for s, p in request.bars.items()},
        "command": request.command,
    }
    outcome = train_folds(
        data,
        folds,
        cfg,
        request.out,
        models=request.models,
        head=head,
        describe=describe,
        progress=request.progress,
        echo=echo,
    )
    document = report_document(data, folds, outcome, request, embargo_s, left_out)
    rows = outcome.tested
    document["edge"] = {
        name: edge_by_label(
            bars.research(),
            data.received[rows],
            probs,
            [data.texts[i] for i in rows],
            symbol,
            request.horizon,
        )
        for name, probs in outcome.probs.items()
    }
    document["inputs"] = describe | {"news_span": _news_span(news)}
    document["wall_seconds"] = round(time.perf_counter() - began, 1)
    _record_eval(request.out, document)
    write_report(request.out, document)
    write_predictions(
        request.out / PREDICTIONS_CSV,
        data.received[rows],
        [data.texts[i] for i in rows],
        data.label[rows],
        data.abnormal[rows],
        outcome.probs,
    )
    return document


def read_market(request: ImpactRequest, settings: Settings) -> tuple[str, MarketBars]:
    """The chosen symbol's bars; a symbol without bars, or a file without any, is one line."""
    if not request.bars:
        raise UserError("--bars [SYMBOL=]FILE is required with --task impact")
    symbol = (request.symbol or next(iter(request.bars))).upper()
    if symbol not in request.bars:
        raise UserError(
            f"--symbol {symbol}: no bars given for it (--bars given for {', '.join(request.bars)})"
        )
    path = request.bars[symbol]
    rows = assemble.bars_file(path, symbol, skip_bad_rows=request.skip_bad_rows)
    bars = MarketBars.from_bars(rows, symbol)
    if len(bars) < 2:
        raise InputError(f"{path}: {len(bars)} bars for {symbol}; impact labels need bars")
    return symbol, bars


def make_folds(data: ImpactData, request: ImpactRequest, embargo_s: int) -> list[Fold]:
    split = (
        int(request.split_date.timestamp())
        if request.split_date is not None
        else default_split(data.received)
    )
    if request.walk_forward:
        try:
            folds = walk_forward(
                data.received, data.window_end, split, request.walk_forward, embargo_s
            )
        except ValueError as error:
            raise UserError(str(error)) from None
    else:
        folds = [split_at(data.received, data.window_end, split, embargo_s)]
    if not folds or not all(fold.test.size for fold in folds):
        last = datetime.fromtimestamp(int(data.received.max()), UTC).isoformat()
        raise InputError(
            f"no labelled headline to test after the split (+ embargo {spell(embargo_s)}); "
            f"the last labelled one was received at {last}: give an earlier --split-date"
        )
    return folds


def report_document(
    data: ImpactData,
    folds: Sequence[Fold],
    outcome: Outcome,
    request: ImpactRequest,
    embargo_s: int,
    left_out: str,
) -> dict[str, Any]:
    rows = outcome.tested
    models = {
        name: score(data.label[rows], probs, data.abnormal[rows], data.received[rows])
        for name, probs in outcome.probs.items()
    }
    trained = np.unique(np.concatenate([fold.train for fold in folds]))
    return {
        "symbol": data.symbol,
        "horizon": request.horizon,
        "threshold": request.threshold,
        "embargo": spell(embargo_s),
        "features": list(data.spec.names),
        "models": models,
        "split": {
            "kind": f"walk-forward {request.walk_forward}" if request.walk_forward else "date",
            "folds": [fold.describe() for fold in folds],
        },
        "label_counts": {
            "train": _label_counts(data.label[trained]),
            "test": _label_counts(data.label[rows]),
            "all": _label_counts(data.label),
        },
        "counts": data.counts,
        "left_out": left_out,
        "seconds": outcome.seconds,
    }


def _record_eval(out: Path, document: Mapping[str, Any]) -> None:
    """The test scores in each head model's manifest too (the model card of a folder)."""
    for kind in ("numbers", "fusion"):
        path = out / kind / IMPACT_MANIFEST
        if path.is_file():
            manifest = json.loads(path.read_text(encoding="utf-8"))
            manifest["eval"] = document["models"][kind]
            path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def _label_counts(labels: np.ndarray) -> dict[str, int]:
    counts = np.bincount(labels, minlength=3)
    return {"down": int(counts[0]), "flat": int(counts[1]), "up": int(counts[2])}


def _seconds(option: str, text: str) -> int:
    try:
        return parse_horizon(text)
    except ValueError as error:
        raise UserError(f"{option}: {error}") from None


def _news_span(news: Sequence[NewsItem]) -> list[str] | None:
    if not news:
        return None
    return [news[0].received.isoformat(), news[-1].received.isoformat()]
