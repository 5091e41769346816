"""Speed of the event study at the issue's size: 7.5k signals x 6.8k 1h bars x 3 horizons x
1,000 bootstrap draws (synthetic bars and news, tests/research/synthetic.py).

    python bench/research_event_study.py [--repeat 3]

Prints the best wall time of `bot.research.event_study.analyze` and the machine's load; it
never passes or fails anything (the slow test tests/research/test_speed.py asserts the bound).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.research.event_study import StudyOptions, analyze
from tests.research.synthetic import synthetic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = synthetic(n_bars=6_800, n_signals=7_500)
    options = StudyOptions(horizons=("1h", "4h", "1d"), draws=1_000)
    best = float("inf")
    for _ in range(args.repeat):
        started = time.perf_counter()
        analyze(data.signals, {"BTCUSDT": data.bars}, options)
        best = min(best, time.perf_counter() - started)
    load = os.getloadavg()[0]
    print(
        f"event study, 7500 signals x 6800 1h bars x 3 horizons x 1000 draws: best of "
        f"{args.repeat} {best:.2f} s on {os.cpu_count()} CPUs (load average {load:.1f})"
    )


if __name__ == "__main__":
    main()
