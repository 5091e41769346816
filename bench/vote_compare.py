"""The old (share) and new (evidence) vote on the shared news over BTC and ETH 1h, with and
without protective exits, side by side; and how `[strategy] prior_weight` was chosen.

    python bench/vote_compare.py [--cache-dir DIR] [--select]

Converts `../shared/data/news/cryptonews_2021_2022.csv` as the README does (`convert-news`)
and backtests it as one portfolio (`--bars BTCUSDT=... --bars ETHUSDT=...`, one engine, one
account) over `BTC_USDT-1h.json` and `ETH_USDT-1h.json` from 2021-10-01 to 2022-07-10, with the
shipped default model and config (the signal cache in `--cache-dir`: the model reads each
headline once, about 2.5 min cold). Prints a markdown table: return, daily Sharpe with its
95% bootstrap interval, max drawdown, fills, fees.

`--select` prints the prior_weight grid instead: each value on the earlier part (2021-10-01 to
2022-03-31) and on the later part (2022-04-01 to 2022-07-10), then the value chosen on the
earlier part alone: the best daily Sharpe among the priors that are a prior at all (> 0) and
keep the acceptance rule "ten agreeing strong headlines (0.95) reach 90% of full size", which
holds up to 9.5 / 10 - 10 = 0.55 pseudo-signals. The later part is reported, never used to
choose. It prints figures and never passes or fails anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("LORABOT_SHARED_DATA", ROOT.parent / "shared" / "data"))
CONVERT = [
    "--delimiter",
    ";",
    "--columns",
    "timestamp=date,title=title,body=text,source=source,link=url",
    "--time-format",
    "%d-%m-%Y %H:%M",
    "--timezone",
    "UTC",
    "--skip-bad-rows",
]
SPAN = ("2021-10-01", "2022-07-10")
EARLIER = ("2021-10-01", "2022-03-31T23:59:59Z")
LATER = ("2022-04-01", "2022-07-10")
#: "With protective exits": a 3% stop, a 6% take-profit and a one-day holding limit.
EXITS = {"stop_loss": "3%", "take_profit": "6%", "max_hold": 86_400.0}
PRIORS = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
MAX_PRIOR = 0.55  # above it, ten 0.95 headlines stay under 90% of full size


def convert(work: Path) -> Path:
    news = work / "news.jsonl"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    csv = SHARED / "news" / "cryptonews_2021_2022.csv"
    command = [sys.executable, "-m", "bot", "convert-news", str(csv), str(news), *CONVERT]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"convert-news failed:\n{done.stderr}")
    return news


def backtest(
    work: Path, cache: Path, news: Path, span: tuple[str, str], name: str, **strategy: Any
) -> dict[str, Any]:
    """One portfolio backtest with the shipped config and these [strategy] keys: its metrics."""
    from bot.backtest import LuckOptions, run_backtest
    from bot.config import load_settings_file
    from bot.events import parse_time

    settings = load_settings_file(ROOT / "config.toml").with_overrides(
        store={"data_dir": str(work / "data"), "cache_dir": str(cache)},
        log={"level": "error"},
        strategy=strategy,
    )
    result = run_backtest(
        settings,
        bars={
            "BTCUSDT": SHARED / "bars" / "BTC_USDT-1h.json",
            "ETHUSDT": SHARED / "bars" / "ETH_USDT-1h.json",
        },
        news_path=news,
        start=parse_time(span[0]),
        end=parse_time(span[1]),
        out_dir=work / name,
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{work / 'ledger.sqlite'}", lag=False),
    )
    return result.metrics


def row(label: str, m: dict[str, Any]) -> str:
    return (
        f"| {label} | {m['total_return'] * 100:+.2f}% | {m['sharpe']:.2f} "
        f"[{m['sharpe_ci_low']:.2f}, {m['sharpe_ci_high']:.2f}] | {m['max_drawdown'] * 100:.2f}% "
        f"| {m['n_trades']} | {m['fees_paid']:,.2f} |"
    )


HEADER = (
    "| run | return | Sharpe [95% CI] | max drawdown | fills | fees |\n|---|---|---|---|---|---|"
)


def table(work: Path, cache: Path, news: Path) -> None:
    from bot.config import load_settings_file

    prior = load_settings_file(ROOT / "config.toml").strategy.prior_weight
    print(f"Portfolio BTCUSDT + ETHUSDT, {SPAN[0]} to {SPAN[1]}, shipped config")
    print(HEADER)
    basket = None
    for label, keys in (
        ("share, no exits", {"aggregation": "share"}),
        ("share, exits", {"aggregation": "share", **EXITS}),
        (f"evidence (prior {prior:g}), no exits", {"aggregation": "evidence"}),
        (f"evidence (prior {prior:g}), exits", {"aggregation": "evidence", **EXITS}),
    ):
        metrics = backtest(work, cache, news, SPAN, label.replace(" ", "_"), **keys)
        basket = metrics["buy_and_hold_return"]
        print(row(label, metrics), flush=True)
    if basket is not None:
        print(f"\nequal-weight basket buy-and-hold: {basket * 100:+.2f}%")


def select(work: Path, cache: Path, news: Path) -> None:
    print("prior_weight on the earlier part (chosen there) and the later part (reported)")
    print(
        "| prior_weight | part | return | Sharpe [95% CI] | max drawdown | fills | fees |\n"
        "|---|---|---|---|---|---|---|"
    )
    earlier: dict[float, float] = {}
    for prior in PRIORS:
        for part, span in (("earlier", EARLIER), ("later", LATER)):
            metrics = backtest(
                work, cache, news, span, f"p{prior}-{part}", aggregation="evidence",
                prior_weight=prior,
            )  # fmt: skip
            if part == "earlier":
                earlier[prior] = metrics["sharpe"]
            print(row(f"{prior:g} | {part}", metrics), flush=True)
    allowed = {p: sharpe for p, sharpe in earlier.items() if 0 < p <= MAX_PRIOR}
    chosen = max(allowed, key=lambda p: allowed[p])
    print(f"\nchosen on the earlier part: prior_weight = {chosen:g} (Sharpe {allowed[chosen]:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, help="Signal cache folder (default: temp)")
    parser.add_argument("--select", action="store_true", help="The prior_weight grid instead")
    args = parser.parse_args()
    for needed in ("news/cryptonews_2021_2022.csv", "bars/BTC_USDT-1h.json"):
        if not (SHARED / needed).is_file():
            sys.exit(f"the shared data is absent ({SHARED / needed}): nothing to measure")
    work = Path(tempfile.mkdtemp(prefix="vote-compare-"))
    cache = args.cache_dir or work / "cache"
    news = convert(work)
    (select if args.select else table)(work, cache, news)


if __name__ == "__main__":
    main()
