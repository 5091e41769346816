"""Generates the bundled sample: synthetic BTCUSDT 15-minute bars and headlines written for it.

Nothing here comes from a data set. The sample exists so that `lorabot backtest --sample` runs
offline in seconds and exercises buys, sells and flat periods; it says nothing about real markets.
For real data, download bars with `lorabot download-data` and record news with
`lorabot news --record FILE`.

The process (seed 20240101, 60 days from 2024-01-01 UTC, 96 bars a day):
- Every day at a random hour a "story" breaks: bullish, bearish or neutral, in a fixed rotation
  with random skips. Its 1-3 headlines are released minutes apart (each headline's `received` is
  its release time) and name Bitcoin, or no coin at all for macro stories (market-wide).
- Log returns are Gaussian with volatility 0.3% per bar (about 3% a day). For 18 hours after a
  story the drift is +0.03% per bar (bullish), -0.03% (bearish) or 0 (neutral); otherwise 0. In a
  quarter of the stories the market "reads" the news the other way (the drift is reversed), so
  news leads price as the strategy assumes, but not always in its favour and never without noise.
- A bar's open is the previous close; high and low extend beyond open/close by a half-normal
  wick; volume is log-normal. Prices are rounded to BTCUSDT's tick (0.1).

Run `python -m bot.sample.generate` to rewrite `bars_btcusdt_15m.csv` and `news.jsonl`.
"""

from __future__ import annotations

import csv
import json
import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240101
START = datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 60
BAR = timedelta(minutes=15)
VOLATILITY = 0.003
DRIFT = 0.0003
MISREAD = 0.25
STORY_HOURS = 18

BULLISH = [
    "Bitcoin surges past resistance as spot ETF inflows hit a record",
    "BTC rallies after major bank approves Bitcoin custody for clients",
    "Bitcoin jumps as institutional buying accelerates",
    "Bitcoin climbs to a two-month high on strong ETF demand",
    "Analysts upgrade Bitcoin outlook after record exchange outflows to cold storage",
    "BTC soars as short squeeze liquidates bearish traders",
    "Bitcoin gains as payment giant adopts BTC settlement",
    "Bitcoin rebounds strongly as miners accumulate",
    "Sovereign fund reveals large Bitcoin purchase, BTC rallies",
    "Bitcoin breakout: BTC rises above key level on heavy volume",
    "Bitcoin hashrate reaches record high as network strength grows",
    "BTC surges after regulators approve new Bitcoin futures products",
    "Optimism returns to crypto as Bitcoin climbs for a fifth day",
    "Bitcoin rallies as inflows into crypto funds jump",
    "Corporate treasury adds Bitcoin, shares and BTC jump",
    "Bitcoin soars as traders price in rate cuts",
    "Fed signals rate cuts ahead; risk assets rally",
    "Stocks and crypto rally as inflation cools more than expected",
]

BEARISH = [
    "Bitcoin plunges as exchange hack drains hot wallets",
    "BTC tumbles after regulators sue a major crypto exchange",
    "Bitcoin slides as miners sell holdings to cover losses",
    "Bitcoin drops sharply on record ETF outflows",
    "Crypto lender halts withdrawals; Bitcoin falls",
    "BTC sinks as liquidations cascade through derivatives markets",
    "Bitcoin crashes below support amid panic selling",
    "Analysts downgrade Bitcoin outlook as demand weakens",
    "Country bans crypto trading, Bitcoin slumps",
    "Bitcoin falls as large holder moves coins to exchanges to sell",
    "BTC declines after exchange reports insolvency fears",
    "Bitcoin tumbles as regulators announce crackdown on crypto",
    "Fear grips crypto markets as Bitcoin loses key level",
    "Bitcoin slumps after failed ETF application is rejected",
    "Fed warns of more rate hikes; risk assets sell off",
    "Stocks and crypto fall as inflation comes in hotter than expected",
    "Recession fears deepen as markets slump",
]

NEUTRAL = [
    "Bitcoin trades flat ahead of monthly options expiry",
    "BTC holds steady as traders await economic data",
    "Bitcoin developers publish notes from routine meeting",
    "Exchange schedules maintenance window for BTC deposits",
    "Bitcoin network difficulty adjusts as expected",
    "BTC moves sideways in a narrow range",
    "Bitcoin conference opens with panels on custody and payments",
    "Central bank holds rates unchanged, as expected",
    "Markets await jobs report; trading volumes are thin",
    "Bitcoin volatility index sits near its yearly average",
    "Analysts see Bitcoin range-bound in the near term",
    "Crypto firm appoints new chief financial officer",
    "BTC consolidates after last week's move",
    "Bitcoin payment channel capacity unchanged this month",
]

ROTATION = ["bullish", "neutral", "bearish", "neutral", "bullish", "bearish", "neutral"]


def generate(out: Path = HERE) -> tuple[Path, Path]:
    rng = random.Random(SEED)
    pools = {"bullish": BULLISH, "bearish": BEARISH, "neutral": NEUTRAL}
    cursors = {name: 0 for name in pools}
    stories: list[tuple[datetime, str]] = []
    news: list[dict[str, object]] = []
    rotation = 0
    for day in range(DAYS):
        if rng.random() < 0.15:
            continue  # a quiet day
        kind = ROTATION[rotation % len(ROTATION)]
        rotation += 1
        hour = rng.randint(1, 21)
        minute = rng.choice([5, 20, 35, 50])
        released = START + timedelta(days=day, hours=hour, minutes=minute)
        market = kind
        if kind != "neutral" and rng.random() < MISREAD:
            market = "bearish" if kind == "bullish" else "bullish"
        stories.append((released, market))
        for k in range(rng.randint(1, 3)):
            pool = pools[kind]
            title = pool[cursors[kind] % len(pool)]
            cursors[kind] += 1
            at = released + timedelta(minutes=7 * k)
            source = rng.choice(["sample-wire", "sample-desk", "sample-chain"])
            news.append(
                {
                    "id": f"sample-{len(news) + 1:04d}",
                    "source": source,
                    "title": title,
                    "body": "",
                    "link": "",
                    "published": at.isoformat().replace("+00:00", "Z"),
                    "received": (at + timedelta(seconds=30)).isoformat().replace("+00:00", "Z"),
                    "symbols": [],
                    "stale": False,
                    "undated": False,
                }
            )

    def drift_at(ts: datetime) -> float:
        value = 0.0
        for released, kind in stories:
            if released <= ts < released + timedelta(hours=STORY_HOURS):
                value = {"bullish": DRIFT, "bearish": -DRIFT, "neutral": 0.0}[kind]
        return value

    bars_path = out / "bars_btcusdt_15m.csv"
    price = 42_000.0
    with bars_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["timestamp", "open", "high", "low", "close", "volume"])
        for index in range(DAYS * 96):
            ts = START + BAR * index
            open_ = price
            close = open_ * math.exp(drift_at(ts) + rng.gauss(0.0, VOLATILITY))
            high = max(open_, close) * (1 + abs(rng.gauss(0.0, VOLATILITY / 2)))
            low = min(open_, close) * (1 - abs(rng.gauss(0.0, VOLATILITY / 2)))
            volume = math.exp(rng.gauss(4.0, 0.5))
            writer.writerow(
                [
                    ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    f"{open_:.1f}",
                    f"{high:.1f}",
                    f"{low:.1f}",
                    f"{close:.1f}",
                    f"{volume:.3f}",
                ]
            )
            price = float(f"{close:.1f}")
    news_path = out / "news.jsonl"
    with news_path.open("w", encoding="utf-8") as handle:
        for item in news:
            handle.write(json.dumps(item, separators=(",", ":")) + "\n")
    return bars_path, news_path


if __name__ == "__main__":
    for path in generate():
        print(path)
