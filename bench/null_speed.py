"""Speed of `lorabot backtest --null N` at the issue's size: the shared 7.5k crypto headlines
(2021-10 to 2022-07) over the shared BTC/USDT 1h bars of the same window (6.8k bars).

    python bench/null_speed.py [--trials 200] [--news FILE] [--bars FILE]

Runs the backtest in-process with the lexicon model (the null replays never call the model, so
the model's speed is no part of this), once without and once with `--null N`, and prints the
time the 2N null replays took, per replay, and the machine's load. It passes or fails nothing.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.backtest import LuckOptions, run_backtest  # noqa: E402
from bot.cli import main as lorabot  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.events import parse_time  # noqa: E402

SHARED = Path(os.environ.get("LORABOT_SHARED_DATA", ROOT.parent / "shared" / "data"))
NEWS = SHARED / "news" / "cryptonews_2021_2022.csv"
BARS = SHARED / "bars" / "BTC_USDT-1h.json"
START, END = parse_time("2021-10-01T00:00Z"), parse_time("2022-07-10T00:00Z")


def convert(news_csv: Path, out: Path) -> Path:
    args = [
        "convert-news", str(news_csv), str(out), "--delimiter", ";",
        "--columns", "timestamp=date,title=title,body=text,source=source,link=url",
        "--time-format", "%d-%m-%Y %H:%M", "--timezone", "UTC", "--skip-bad-rows",
    ]  # fmt: skip
    try:
        lorabot(args)
    except SystemExit as done:
        if done.code not in (0, None):
            raise
    return out


def cpu_s() -> float:
    """CPU seconds of this process and of its finished children (the forked null workers)."""
    me, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def timed(
    settings: Settings, news: Path, bars: Path, out: Path, trials: int
) -> tuple[float, float, int]:
    began, cpu = time.perf_counter(), cpu_s()
    result = run_backtest(
        settings,
        bars_path=bars,
        news_path=news,
        symbol="BTCUSDT",
        start=START,
        end=END,
        out_dir=out,
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{out.parent / 'ledger.sqlite'}", lag=False,
                         null_trials=trials),
    )  # fmt: skip
    return time.perf_counter() - began, cpu_s() - cpu, result.recording.n_bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--news", type=Path, default=NEWS)
    parser.add_argument("--bars", type=Path, default=BARS)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        news = convert(args.news, tmp / "news.jsonl")
        settings = Settings().with_overrides(
            model={"backend": "lexicon"},
            store={"cache_dir": str(tmp / "cache"), "data_dir": str(tmp / "data")},
            log={"level": "warning"},
        )
        base, base_cpu, n_bars = timed(settings, news, args.bars, tmp / "base", 0)
        with_null, null_cpu, _ = timed(settings, news, args.bars, tmp / "null", args.trials)
    replays = 2 * args.trials
    null_s, cpu = with_null - base, null_cpu - base_cpu
    cpus = len(os.sched_getaffinity(0))
    idle = base_cpu + cpu / replays * 400 / cpus
    print(
        f"backtest {n_bars} 1h bars: {base:.1f} s ({base_cpu:.1f} s CPU); with --null "
        f"{args.trials}: {with_null:.1f} s ({null_cpu:.1f} s CPU): {null_s:.1f} s wall and "
        f"{cpu:.1f} s CPU for {replays} null replays, {null_s / replays:.3f} s wall and "
        f"{cpu / replays:.3f} s CPU each; --null 200 would take {base + null_s / replays * 400:.0f}"
        f" s wall on this machine now, about {idle:.0f} s on {cpus} idle CPUs "
        f"(load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
