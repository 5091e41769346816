"""Hyperopt trials per second at the issue's size: the shared 7.5k crypto headlines
(2021-10 to 2022-07) over the shared BTC/USDT 1h bars of the same window (6.8k bars).

Every headline is answered once before the clock starts (the lexicon model by default: trials
never call the model, so which model answered does not change a trial's cost); then N trials of
the vote's space on one anchored fold (the in-sample span is half the data) with J worker
processes on one journal file. Prints trials/s.

    LORABOT_SHARED_DATA=../shared/data python bench/hyperopt_speed.py --trials 20 --jobs 2
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

import optuna  # noqa: E402

from bench.null_speed import BARS, END, NEWS, START, convert  # noqa: E402
from bot.clock import LiveClock  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.optimize.run import HyperoptOptions, _fork_workers, prepare  # noqa: E402
from bot.optimize.worker import run_worker  # noqa: E402


def _cpu() -> float:
    """CPU seconds of this process and its finished children (the forked workers)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--model", default="lexicon")
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        news = convert(NEWS, tmp / "news.jsonl")
        settings = Settings().with_overrides(
            model={"backend": args.model},
            store={"cache_dir": str(tmp / "cache"), "data_dir": str(tmp / "data")},
            log={"level": "warning"},
        )
        options = HyperoptOptions(
            news_path=news, bars_path=BARS, out_dir=tmp / "out", trials=args.trials, folds=1,
            jobs=args.jobs, start=START, end=END, ledger_url=f"sqlite:///{tmp / 'ledger.sqlite'}",
            progress=False,
        )  # fmt: skip
        began = time.perf_counter()
        job = prepare(settings, options, LiveClock())
        loaded = time.perf_counter() - began
        options.out_dir.mkdir()
        began = time.perf_counter()
        cpu_before = _cpu()
        children = _fork_workers(job, args.jobs - 1)
        run_worker(job, 0)
        for child in children:
            child.join()
        elapsed = time.perf_counter() - began
        cpu = _cpu() - cpu_before
    print(
        f"{args.trials} trials ({len(job.data.bars)} bars, {len(job.data.news)} headlines, "
        f"in-sample {job.folds[0].is_start:%Y-%m-%d} to {job.folds[0].is_end:%Y-%m-%d}) on "
        f"{args.jobs} processes: {elapsed:.1f} s, {args.trials / elapsed:.2f} trials/s "
        f"({cpu / args.trials:.2f} CPU-s a trial; parse + answer once: {loaded:.1f} s; "
        f"{os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
