"""A synthetic news file and bars file on disk where the numbers carry the signal and the text
does not: every headline arrives after a 4h move of +3%, 0 or -3% (its sign drawn at random) and
is followed by the same move again (momentum), while its words are drawn at random whatever the
move. `pre_4h` therefore predicts the label exactly and the text predicts nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

HOUR = 3_600
T0 = 1_640_995_200  # 2022-01-01T00:00:00Z
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "omega",
    "river",
    "stone",
    "cloud",
    "paper",
    "orange",
    "window",
    "garden",
    "silver",
    "forest",
    "candle",
    "rocket",
    "winter",
    "summer",
    "harbor",
    "valley",
]


def _iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_momentum_files(
    folder: Path, days: int = 90, every_h: int = 8, seed: int = 0
) -> tuple[Path, Path, int]:
    """(news.csv, bars.csv, the number of headlines)."""
    rng = np.random.default_rng(seed)
    n_bars = days * 24
    steps = rng.normal(0, 0.001, n_bars)
    first_entry = 31 * 24
    entries = list(range(first_entry, n_bars - 8, every_h))
    moves = rng.choice([-1.0, 0.0, 1.0], size=len(entries))
    for entry, move in zip(entries, moves, strict=True):
        steps[entry - 4 : entry] += move * 0.0075  # 3% over the 4h before the headline
        steps[entry : entry + 4] += move * 0.0075  # and 3% again after it
    log_open = np.log(100.0) + np.concatenate(([0.0], np.cumsum(steps[:-1])))
    opens = np.exp(log_open)
    closes = np.concatenate((opens[1:], [opens[-1]]))
    bars = folder / "bars.csv"
    with bars.open("w", encoding="utf-8") as handle:
        handle.write("timestamp,open,high,low,close,volume\n")
        for i in range(n_bars):
            o, c = opens[i], closes[i]
            volume = rng.uniform(10, 20)
            handle.write(
                f"{_iso(T0 + i * HOUR)},{o:.6f},{max(o, c):.6f},{min(o, c):.6f},{c:.6f},"
                f"{volume:.3f}\n"
            )
    news = folder / "news.csv"
    with news.open("w", encoding="utf-8") as handle:
        handle.write("timestamp,source,title,body\n")
        for k, entry in enumerate(entries):
            words = " ".join(rng.choice(WORDS, size=6))
            received = T0 + entry * HOUR - 1_800  # mid-bar: the entry is the next open
            handle.write(f"{_iso(received)},wire,{words} {k},\n")
    return news, bars, len(entries)
