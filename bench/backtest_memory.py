"""Peak memory of `lorabot backtest` on a big bars file (issue 11 point 8).

    python bench/backtest_memory.py [--bars CSV] [--mb 200] [--root DIR]

Tiles the month of 1-minute bars (as bench/engine_throughput.py does) until the CSV is `--mb`
megabytes, runs `python -m bot backtest --bars` on it in a subprocess, as a user would, and prints
the child's peak resident set size (`getrusage(RUSAGE_CHILDREN).ru_maxrss`). The memory a backtest
needs must not grow with its input: the target is under 400 MB for a 200 MB file. `--root` runs
another checkout of lorabot (to measure a baseline). It measures and prints; it never fails.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BARS = ROOT.parent / "shared" / "data" / "bars" / "btc-perp-20211231-20220201_1m.csv"


def tiled_csv(source: Path, folder: Path, megabytes: float) -> tuple[Path, int]:
    """The month repeated, shifted in time, until the CSV is `megabytes` big.

    Prices repeat unscaled (engine_throughput's rescaling drifts to zero over the ~70 copies
    200 MB needs); without news nothing trades, so only the size matters here.
    """
    with source.open() as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    first = datetime.fromisoformat(body[0][0])
    span = datetime.fromisoformat(body[-1][0]) - first + timedelta(minutes=1)
    target = folder / "tiled.csv"
    count, copy, limit = 0, 0, megabytes * 1e6
    with target.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        while out.tell() < limit:
            shift = span * copy
            for row in body:
                ts = datetime.fromisoformat(row[0]) + shift
                writer.writerow([ts.strftime("%Y-%m-%dT%H:%M:%S"), *row[1:]])
                count += 1
            copy += 1
    return target, count


def peak_rss_mb(root: Path, bars: Path, out: Path) -> tuple[float, float]:
    """Peak RSS of one `python -m bot backtest` child (MB) and its wall time (s)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, "-m", "bot", "backtest", "--bars", str(bars), "--out", str(out)]
    started = time.perf_counter()
    done = subprocess.run(
        [*command, "--no-progress"], capture_output=True, text=True, env=env, cwd=root
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"backtest failed ({done.returncode}): {done.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak_kb / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=Path, default=DEFAULT_BARS)
    parser.add_argument("--mb", type=float, default=200.0)
    parser.add_argument("--root", type=Path, default=ROOT, help="the lorabot checkout to run")
    args = parser.parse_args()
    if not args.bars.exists():
        sys.exit(f"{args.bars} not found: pass --bars with a 1-minute canonical bars CSV")
    with tempfile.TemporaryDirectory(prefix="lorabot-mem-") as name:
        folder = Path(name)
        bars, count = tiled_csv(args.bars, folder, args.mb)
        size = bars.stat().st_size / 1e6
        peak, seconds = peak_rss_mb(args.root.resolve(), bars, folder / "run")
    print(
        f"bars file {size:.0f} MB ({count:,} bars): peak RSS {peak:.0f} MB, "
        f"{seconds:.1f} s ({args.root.resolve()})"
    )


if __name__ == "__main__":
    main()
