"""What serving the console costs a paper daemon: `lorabot run --replay-news ... --replay-bars
... --speed ...` with `[api] enabled` on and off, alternating, the same files each time.

The replay is paced fast enough to keep the daemon busy (CPU-bound), with the market queue set to
block so nothing is dropped, and each run is timed from the process's start to the moment both
sources logged "source finished" and every headline has its decision record (read from the
store). With the console on, a client polls /api/v1/status and /api/v1/decisions every second
and holds the live event stream open, as an open dashboard does.

    python bench/console_overhead.py [--bars 40000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def write_files(folder: Path, bars: int, every: int) -> tuple[Path, Path, int]:
    start = datetime.now(UTC) + timedelta(seconds=5)
    step = timedelta(seconds=1)
    lines = ["timestamp,open,high,low,close,volume"]
    for i in range(bars):
        price = 40000 + 15 * (i % 40)
        lines.append(
            f"{(start + step * i).isoformat()},{price},{price + 30},{price - 30},{price + 5},1"
        )
    (folder / "bars.csv").write_text("\n".join(lines) + "\n")
    titles = ["Bitcoin surges as ETF inflows jump", "Bitcoin plunges after exchange hack"]
    n = bars // every
    with (folder / "news.jsonl").open("w") as handle:
        for k in range(n):
            ts = (start + step * (every * k + every // 2)).isoformat()
            row = {"id": f"k{k}", "source": "bench", "title": titles[k % 2], "received": ts,
                   "symbols": ["BTCUSDT"]}  # fmt: skip
            handle.write(json.dumps(row) + "\n")
    return folder / "news.jsonl", folder / "bars.csv", n


def config(folder: Path, console: bool) -> Path:
    path = folder / f"config-{'on' if console else 'off'}.toml"
    path.write_text(
        f'[store]\ncommit_interval = "200ms"\ncache_dir = "{folder / "cache"}"\n'
        '[strategy]\nwindow = "60s"\nhalf_life = 0\nreevaluate_interval = 0\n'
        '[risk]\nmax_price_age = "1h"\nmax_orders_per_minute = 100000\n'
        '[engine]\nsnapshot_interval = "60s"\nmarket_overflow = "block"\n'
        '[model]\nbackend = "lexicon"\nmax_wait = "5ms"\n[log]\nformat = "json"\nlevel = "info"\n'
        f'[api]\nenabled = {"true" if console else "false"}\nlisten = "127.0.0.1:0"\n'
    )
    return path


def dashboard_client(url: str, stop: threading.Event) -> None:
    def stream() -> None:
        try:
            with urllib.request.urlopen(url + "/api/v1/events", timeout=600) as response:
                while not stop.is_set() and response.readline():
                    pass
        except OSError:
            pass

    threading.Thread(target=stream, daemon=True).start()
    while not stop.is_set():
        for path in ("/api/v1/status", "/api/v1/decisions?limit=50", "/api/v1/equity"):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url + path, timeout=10).read()
        stop.wait(1.0)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process, every thread (the console's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def first_to_last_decision(store: Path) -> float:
    with sqlite3.connect(store) as db:
        first, last = db.execute("select min(ts), max(ts) from decisions").fetchone()

    def parse(text: object) -> datetime:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))

    return (parse(last) - parse(first)).total_seconds()


def one_run(
    folder: Path, news: Path, bars: Path, n_news: int, console: bool, speed: float, watch: bool
) -> tuple[float, float, float]:
    """(wall seconds to the last decision, CPU seconds by then, first to last decision)."""
    home = folder / f"xdg-{time.monotonic_ns()}"
    log = folder / f"log-{time.monotonic_ns()}.txt"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(home)}
    command = [
        *(sys.executable, "-m", "bot", "run", "--config", str(config(folder, console))),
        *("--replay-news", str(news), "--replay-bars", str(bars), "--speed", str(speed)),
    ]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env)
    stop = threading.Event()
    client: threading.Thread | None = None
    store = home / "lorabot" / "lorabot.sqlite"
    try:
        while True:
            time.sleep(0.05)
            if process.poll() is not None:
                raise SystemExit(log.read_text()[-3000:])
            records = [
                json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")
            ]
            if console and watch and client is None:
                for r in records:
                    if r.get("event") == "console serving":
                        client = threading.Thread(
                            target=dashboard_client, args=(r["url"].rstrip("/"), stop), daemon=True
                        )
                        client.start()
            finished = sum(1 for r in records if r.get("event") == "source finished")
            if finished >= 2 and store.exists():
                with sqlite3.connect(store) as db:
                    decided = db.execute(
                        "select count(*) from decisions where trigger='news'"
                    ).fetchone()[0]
                if decided >= n_news:
                    wall = time.perf_counter() - began
                    return wall, cpu_seconds(process.pid), first_to_last_decision(store)
    finally:
        stop.set()
        process.send_signal(signal.SIGTERM)
        process.wait(60)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=40_000)
    parser.add_argument("--every", type=int, default=20, help="a headline every N bars")
    parser.add_argument("--speed", type=float, default=2000.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--no-client", action="store_true", help="console on, but no dashboard open"
    )
    args = parser.parse_args()
    runs: dict[bool, list[tuple[float, float, float]]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        news, bars, n_news = write_files(folder, args.bars, args.every)
        for round_ in range(args.rounds):
            for console in (False, True) if round_ % 2 == 0 else (True, False):
                wall, cpu, span = one_run(
                    folder, news, bars, n_news, console, args.speed, not args.no_client
                )
                runs[console].append((wall, cpu, span))
                print(
                    f"round {round_ + 1} console {'on ' if console else 'off'}: wall {wall:.2f} s,"
                    f" CPU {cpu:.2f} s, first to last decision {span:.2f} s",
                    flush=True,
                )
    watched = "no dashboard open" if args.no_client else "a dashboard open"
    print(f"{args.bars} bars, {n_news} headlines, --speed {args.speed:g}, {watched}, medians:")
    for i, name in enumerate(
        ("wall to the last decision", "CPU seconds", "first to last decision")
    ):
        off = statistics.median(r[i] for r in runs[False])
        on = statistics.median(r[i] for r in runs[True])
        print(f"  {name}: off {off:.2f}, on {on:.2f}: {100 * (on - off) / off:+.1f}%")


if __name__ == "__main__":
    main()
