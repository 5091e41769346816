"""The impact issue's acceptance run: three impact models and the sentiment default, side by side.

On the shared crypto headlines (converted with `lorabot convert-news` as bench/RESULTS.md's
research section shows) and BTC/USDT 1h bars: horizon 4h, trained on items before 2022-04-01,
tested from 2022-04-01 (+ the 4h embargo) to the end of the news (2022-07-05). The sentiment
default (the shipped LoRA model) is scored on the very same test items with the same figures,
its bearish / neutral / bullish read as down / flat / up.

    LORABOT_SHARED_DATA=../shared/data python bench/impact_acceptance.py --news /tmp/cn.jsonl \
        --out /tmp/impact-acceptance [--epochs 2] [--threads 2]

Writes OUT/impact_report.json/md (with a `sentiment` row added) and prints the markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    shared = Path(os.environ.get("LORABOT_SHARED_DATA", "../shared/data"))
    parser.add_argument("--news", type=Path, required=True)
    parser.add_argument("--bars", type=Path, default=shared / "bars" / "BTC_USDT-1h.json")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--split-date", default="2022-04-01")
    parser.add_argument("--walk-forward", default=None)
    parser.add_argument("--models", default="text,numbers,fusion", help="impact models to train")
    parser.add_argument(
        "--max-length", type=int, default=None, help="text tokens (default: config)"
    )
    parser.add_argument("--no-sentiment", action="store_true", help="skip the sentiment row")
    args = parser.parse_args()

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from bot.config import Settings, TrainingConfig
    from training.classifier import load_model
    from training.impact.cli import ImpactRequest, run
    from training.impact.report import edge_by_label, score, write_report
    from training.runtime import quiet_libraries

    quiet_libraries()
    settings = Settings()
    cfg = TrainingConfig.model_validate(
        settings.training.model_dump()
        | {"epochs": args.epochs, "num_threads": args.threads}
        | ({"max_length": args.max_length} if args.max_length else {})
    )
    split = datetime.fromisoformat(args.split_date).replace(tzinfo=UTC)
    request = ImpactRequest(
        news=args.news,
        bars={"BTCUSDT": args.bars},
        out=args.out,
        horizon="4h",
        split_date=split,
        walk_forward=args.walk_forward,
        models=tuple(args.models.split(",")),
        progress=False,
        command="bench/impact_acceptance.py",
    )
    began = time.perf_counter()
    document = run(settings, cfg, request, echo=print)
    document["bench_wall_seconds"] = round(time.perf_counter() - began, 1)

    if args.no_sentiment:
        write_report(args.out, document)
        return
    with (args.out / "impact_predictions.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    began = time.perf_counter()
    default = load_model(num_threads=args.threads, batch_size=128)
    probs = default.predict_proba([row["text"] for row in rows])
    document["sentiment_scoring_seconds"] = round(time.perf_counter() - began, 1)  # not training
    labels = np.array([("down", "flat", "up").index(row["label"]) for row in rows])
    abnormal = np.array([float(row["abnormal_bps"]) / 1e4 for row in rows])
    received = np.array([int(datetime.fromisoformat(r["received"]).timestamp()) for r in rows])
    document["models"]["sentiment"] = score(labels, probs, abnormal, received)
    document["edge"]["sentiment"] = edge_by_label(
        _market_bars(args.bars).research(),
        received,
        probs,
        [row["text"] for row in rows],
        "BTCUSDT",
        "4h",
    )
    document["sentiment_model"] = default.model_id
    write_report(args.out, document)
    print((args.out / "impact_report.md").read_text())
    print(json.dumps(document["seconds"]))


def _market_bars(path: Path):  # type: ignore[no-untyped-def]
    from bot import assemble
    from training.impact.features import MarketBars

    return MarketBars.from_bars(assemble.bars_file(path, "BTCUSDT"), "BTCUSDT")


if __name__ == "__main__":
    main()
