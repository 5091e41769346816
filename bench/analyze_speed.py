"""Speed of `lorabot analyze` on the shared 7.5k real headlines x BTC 1h bars, warm cache.

    python bench/analyze_speed.py [--config FILE] [--cache-dir DIR] [--repeat 3]

Converts `../shared/data/news/cryptonews_2021_2022.csv` as the README does (`convert-news`),
then runs `python -m bot analyze` end to end (process start, reading, the replay that produces
the signals, the study with 1,000 bootstrap draws, the five output files) over
`BTC_USDT-1h.json` from 2021-10-01 to 2022-07-10 at 1h,4h,1d. The first run fills the signal
cache (the model reads every headline once, timed apart as the cold run); the next `--repeat`
runs find every answer there, and the best of them is the warm figure (the issue's bound: under
10 s). The default config is the shipped default model with the cache in `--cache-dir`. It
prints the figures and the machine's load; it never passes or fails anything.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def lorabot(*args: str) -> float:
    """Run `python -m bot ARGS` with this checkout's code; its wall time in seconds."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args], env=env, cwd=ROOT, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"lorabot {' '.join(args[:3])} failed:\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, help="Config file (default: the shipped defaults)")
    parser.add_argument("--cache-dir", type=Path, help="Signal cache folder (default: a temp dir)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    csv = SHARED / "news" / "cryptonews_2021_2022.csv"
    bars = SHARED / "bars" / "BTC_USDT-1h.json"
    if not csv.is_file() or not bars.is_file():
        sys.exit(f"the shared data is absent ({SHARED}): nothing to measure")
    work = Path(tempfile.mkdtemp(prefix="analyze-bench-"))
    news = work / "news.jsonl"
    lorabot("convert-news", str(csv), str(news), *CONVERT)
    config = args.config
    if config is None:
        cache = args.cache_dir or work / "cache"
        config = work / "config.toml"
        config.write_text(
            f'[store]\ndata_dir = "{work / "data"}"\ncache_dir = "{cache}"\n', encoding="utf-8"
        )
    command = [
        "--config",
        str(config),
        "analyze",
        "--news",
        str(news),
        "--bars",
        f"BTCUSDT={bars}",
        "--from",
        "2021-10-01",
        "--to",
        "2022-07-10",
        "--horizons",
        "1h,4h,1d",
        "--no-progress",
    ]
    first = lorabot(*command, "--out", str(work / "out0"))
    warm = [lorabot(*command, "--out", str(work / f"out{i + 1}")) for i in range(args.repeat)]
    load = os.getloadavg()[0]
    print(
        f"lorabot analyze, 7,496 headlines x BTC 1h bars (2021-10-01 to 2022-07-10), "
        f"1h,4h,1d, 1000 draws, end to end: first run {first:.1f} s (fills the cache unless "
        f"it was warm); warm cache best of {args.repeat}: {min(warm):.2f} s "
        f"(all: {', '.join(f'{w:.2f}' for w in warm)}) on {os.cpu_count()} CPUs "
        f"(load average {load:.1f})"
    )


if __name__ == "__main__":
    main()
