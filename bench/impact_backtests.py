"""Backtests of the impact acceptance run's models on its test months, beside the sentiment default.

`bench/impact_acceptance.py` trains and scores the text, numbers and fusion models; this replays
each of them, and the shipped sentiment model, through the same engine over the same test span
(the report's first test day to the last test item, default strategy and costs), each with the
bootstrap interval of its Sharpe and the null-model p-value (labels permuted among its own
signals). An impact model's features read the bars before `--from` too, as in `lorabot backtest`.

    PYTHONPATH=. python bench/impact_backtests.py --run /tmp/impact --news /tmp/cn.jsonl \
        --bars ../shared/data/bars/BTC_USDT-1h.json --out /tmp/impact-bt [--null 10]

Writes OUT/impact_backtests.json (`models.<name>` = total return, Sharpe and their 95% intervals,
PSR, null and coin-flip p-values, fills, seconds) and prints the markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

KEYS = (
    "total_return",
    "total_return_ci_low",
    "total_return_ci_high",
    "sharpe",
    "sharpe_ci_low",
    "sharpe_ci_high",
    "psr",
    "null_p_value",
    "coin_flip_p_value",
    "n_trades",
    "buy_and_hold_return",
)


def test_span(run: Path) -> tuple[datetime, datetime]:
    """[first test day, last test item]: the span the acceptance run scored out of sample."""
    report = json.loads((run / "impact_report.json").read_text(encoding="utf-8"))
    folds = report["split"]["folds"]
    start = datetime.fromisoformat(folds[0]["test_from"].replace("Z", "+00:00"))
    with (run / "impact_predictions.csv").open(encoding="utf-8") as handle:
        import csv

        last = max(datetime.fromisoformat(row["received"]) for row in csv.DictReader(handle))
    return start, last


def backtest(
    name: str, model: dict[str, Any], args: argparse.Namespace, span: tuple[datetime, datetime]
) -> dict[str, Any]:
    from bot.backtest import LuckOptions, run_backtest
    from bot.config import Settings

    settings = Settings().with_overrides(model={"cache": False, **model})
    began = time.perf_counter()
    result = run_backtest(
        settings,
        bars={args.symbol: args.bars},
        news_path=args.news,
        start=span[0],
        end=span[1],
        out_dir=args.out / name,
        progress=False,
        luck=LuckOptions(
            ledger_url=f"sqlite:///{args.out / 'ledger.sqlite'}", lag=False, null_trials=args.null
        ),
    )
    row = {key: result.metrics.get(key) for key in KEYS}
    row["model_id"] = result.parts.model.model_id
    row["seconds"] = round(time.perf_counter() - began, 1)
    return row


def table(rows: dict[str, dict[str, Any]]) -> str:
    def pct(value: Any) -> str:
        return "n/a" if value is None else f"{100 * float(value):+.2f}%"

    def num(value: Any) -> str:
        return "n/a" if value is None else f"{float(value):+.2f}"

    lines = [
        "| model | total return (95% CI) | Sharpe (95% CI) | PSR | null p | coin-flip p | fills |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {pct(r['total_return'])} ({pct(r['total_return_ci_low'])} to "
            f"{pct(r['total_return_ci_high'])}) | {num(r['sharpe'])} ({num(r['sharpe_ci_low'])} "
            f"to {num(r['sharpe_ci_high'])}) | {r['psr']:.2f} | {r['null_p_value']} | "
            f"{r['coin_flip_p_value']} | {r['n_trades']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True, help="bench/impact_acceptance.py OUT")
    parser.add_argument("--news", type=Path, required=True)
    parser.add_argument("--bars", type=Path, required=True)
    parser.add_argument("--symbol", default="BTCUSDT")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--null", type=int, default=10, help="null replays per model")
    parser.add_argument("--models", default="text,numbers,fusion,sentiment")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args.out.mkdir(parents=True, exist_ok=True)
    span = test_span(args.run)
    rows: dict[str, dict[str, Any]] = {}
    for name in args.models.split(","):
        model = {} if name == "sentiment" else {"path": str(args.run / name)}
        rows[name] = backtest(name, model, args, span)
        print(name, json.dumps(rows[name]), flush=True)
    document = {"span": [span[0].isoformat(), span[1].isoformat()], "models": rows}
    (args.out / "impact_backtests.json").write_text(json.dumps(document, indent=2) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
