"""Engine throughput in replay, and `lorabot backtest` end to end against nautilus_trader.

    python bench/engine_throughput.py [--bars CSV] [--tile 1000000] [--rounds 3] [--no-nautilus]
                                      [--write]

1. Events per second through the full engine (bus, signal service, vote, risk gate, paper broker,
   portfolio, store): the bars plus one headline every 60 bars, answered by the scripted model
   (so the model is not what is measured), trading on them.
2. `lorabot backtest --bars` as a user runs it (a subprocess, start-up and report included) on
   the real month of 1-minute bars and on the same month tiled to >= 1,000,000 bars; the marginal
   rate (extra bars / extra seconds) cancels start-up. Steps 2 and 3 run in interleaved rounds
   (`--rounds`, 3 by default) and keep each run's shortest time: one round's ratio moved from
   5.4x to 6.2x on the same code on a shared 2-core machine.
3. nautilus_trader's BacktestEngine on the same two CSVs (bench/nautilus_bars.py, a strategy that
   reads each bar's close, bars through BarDataWrangler), from its own virtual environment
   (.bench-env, created on first use with `pip install nautilus_trader`).

It measures and prints; it never passes or fails anything. `--write` replaces this benchmark's
section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BARS = ROOT.parent / "shared" / "data" / "bars" / "btc-perp-20211231-20220201_1m.csv"
BENCH_ENV = ROOT / ".bench-env"
SECTION = "## Engine throughput (`bench/engine_throughput.py`)"


def tile(source: Path, target: Path, minimum: int) -> int:
    """The month repeated, shifted in time and rescaled in price so the series stays continuous."""
    with source.open() as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    first = datetime.fromisoformat(body[0][0])
    span = datetime.fromisoformat(body[-1][0]) - first + timedelta(minutes=1)
    factor, copy, count = 1.0, 0, 0
    with target.open("w", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        while count < minimum:
            for row in body:
                ts = datetime.fromisoformat(row[0]) + span * copy
                prices = [f"{float(x) * factor:.1f}" for x in row[1:5]]
                writer.writerow([ts.strftime("%Y-%m-%dT%H:%M:%S"), *prices, row[5]])
                count += 1
            factor *= float(body[-1][4]) / float(body[0][1])
            copy += 1
    return count


def news_for(bars: Path, folder: Path, every: int = 60) -> tuple[Path, Path, int]:
    """One headline every `every` bars and the scripted model's answers for them."""
    labels = ["bullish", "bearish", "neutral"]
    news, answers = folder / "news.jsonl", folder / "answers.jsonl"
    count = 0
    with bars.open() as handle, news.open("w") as n_out, answers.open("w") as a_out:
        reader = csv.reader(handle)
        next(reader)
        for index, row in enumerate(reader):
            if index % every != every // 2:
                continue
            ts = datetime.fromisoformat(row[0]).replace(tzinfo=UTC) + timedelta(seconds=90)
            title = f"Headline {count} about bitcoin"
            label = labels[count % 3]
            n_out.write(
                json.dumps(
                    {
                        "id": f"b{count}",
                        "source": "bench",
                        "title": title,
                        "received": ts.isoformat(),
                    }
                )
                + "\n"
            )
            a_out.write(json.dumps({"text": title, "label": label, "confidence": 0.9}) + "\n")
            count += 1
    return news, answers, count


def engine_events_per_second(bars: Path, folder: Path) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from bot.backtest import run_backtest
    from bot.config import Settings

    news, answers, n_news = news_for(bars, folder)
    settings = Settings().with_overrides(
        model={"backend": "scripted", "scripted_file": str(answers), "cache": False},
        store={"cache_dir": str(folder / "cache")},
        # each headline decides on its own: the engine trades; the share vote, which every
        # earlier figure of this benchmark ran (the evidence vote trades differently)
        strategy={"window": "30m", "aggregation": "share"},
    )
    result = run_backtest(
        settings, bars_path=bars, news_path=news, out_dir=folder / "engine", progress=False
    )
    events = result.recording.n_bars + result.recording.n_news
    return {
        "events": events,
        "bars": result.recording.n_bars,
        "news": n_news,
        "fills": len(result.recording.trades),
        "seconds": result.replay_s,
        "events_per_s": events / result.replay_s,
        "cpu_s": result.replay_cpu_s,
        "events_per_cpu_s": events / result.replay_cpu_s,
    }


#: The CPU seconds (user + system) of every child process so far: on a shared machine the
#: marginal rate is also worked out from these, which other processes' load moves far less.
CHILD_CPU: list[float] = []


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds and stdout of `command`; its CPU seconds go to CHILD_CPU."""
    started, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    CHILD_CPU.append(children_cpu() - cpu)
    if done.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed: {done.stderr[-2000:]}")
    return elapsed, done.stdout


def lorabot_backtest(bars: Path, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seconds, _ = timed(
        [
            sys.executable,
            "-m",
            "bot",
            "backtest",
            "--bars",
            str(bars),
            "--out",
            str(out),
            "--no-progress",
        ],
        env,
    )
    return seconds


def nautilus_python() -> Path | None:
    python = BENCH_ENV / "bin" / "python"
    if not python.exists():
        print("creating .bench-env with nautilus_trader (first run only)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(BENCH_ENV)], check=True)
        installed = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "nautilus_trader"], check=False
        )
        if installed.returncode != 0:
            return None
    return python


def nautilus(bars: Path) -> dict[str, float] | None:
    python = nautilus_python()
    if python is None:
        return None
    _, out = timed([str(python), str(ROOT / "bench" / "nautilus_bars.py"), str(bars)])
    return json.loads(out.strip().splitlines()[-1])


def count_bars(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=Path, default=DEFAULT_BARS)
    parser.add_argument("--tile", type=int, default=1_000_000)
    parser.add_argument("--no-nautilus", action="store_true")
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds; each run's best is kept"
    )
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not args.bars.exists():
        sys.exit(f"{args.bars} not found: pass --bars with a 1-minute canonical bars CSV")
    folder = Path(tempfile.mkdtemp(prefix="lorabot-bench-"))
    big = folder / "tiled.csv"
    n_big = tile(args.bars, big, args.tile)
    n_small = count_bars(args.bars)

    engine = engine_events_per_second(big, folder)
    # Interleaved rounds, each run's shortest wall and CPU time kept (the least disturbed by
    # the machine's other load), the same way for both tools; every round's ratio is printed.
    best_wall: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    bars_of: dict[str, int] = {"lorabot small": n_small, "lorabot big": n_big}
    round_ratios: list[str] = []

    def keep(key: str, wall: float) -> None:
        best_wall[key] = min(best_wall.get(key, wall), wall)
        best_cpu[key] = min(best_cpu.get(key, CHILD_CPU[-1]), CHILD_CPU[-1])

    def rate(tool: str, seconds: dict[str, float]) -> float:
        """Marginal bars/s: the extra bars of the big run over its extra seconds."""
        extra = bars_of[f"{tool} big"] - bars_of[f"{tool} small"]
        return extra / (seconds[f"{tool} big"] - seconds[f"{tool} small"])

    for index in range(args.rounds):
        walls: dict[str, float] = {}
        for size, path in (("small", args.bars), ("big", big)):
            walls[f"lorabot {size}"] = lorabot_backtest(path, folder / f"{size}{index}")
            keep(f"lorabot {size}", walls[f"lorabot {size}"])
        if not args.no_nautilus:
            for size, path in (("small", args.bars), ("big", big)):
                found = nautilus(path)
                if found is None:
                    break
                bars_of[f"nautilus {size}"] = int(found["bars"])
                walls[f"nautilus {size}"] = found["seconds"]
                keep(f"nautilus {size}", found["seconds"])
        if "nautilus big" in walls:
            round_ratios.append(f"{rate('lorabot', walls) / rate('nautilus', walls):.2f}x")

    marginal, marginal_cpu = rate("lorabot", best_wall), rate("lorabot", best_cpu)
    small_s, big_s = best_wall["lorabot small"], best_wall["lorabot big"]
    rows = [
        f"| lorabot backtest | {n_small:,} | {small_s:.2f} | {n_small / small_s:,.0f} |",
        f"| lorabot backtest | {n_big:,} | {big_s:.2f} | {n_big / big_s:,.0f} |",
    ]
    nt_marginal = nt_marginal_cpu = None
    if "nautilus big" in best_wall and "nautilus small" in best_wall:
        nt_marginal, nt_marginal_cpu = rate("nautilus", best_wall), rate("nautilus", best_cpu)
        for size in ("small", "big"):
            n, seconds = bars_of[f"nautilus {size}"], best_wall[f"nautilus {size}"]
            rows.append(
                f"| nautilus_trader BacktestEngine | {n:,} | {seconds:.2f} | {n / seconds:,.0f} |"
            )
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        SECTION,
        "",
        f"Machine: {machine}. Date: {datetime.now(UTC):%Y-%m-%d}. "
        f"Command: `python bench/engine_throughput.py --rounds {args.rounds} --write` "
        f"(bars: `{args.bars.name}`, "
        f"tiled to {n_big:,}).",
        "",
        f"Full engine in replay, the event loop alone (the tiled bars + one headline every 60 "
        f"bars, scripted model, {engine['fills']:,.0f} fills, everything stored): "
        f"**{engine['events_per_s']:,.0f} events/s** ({engine['events']:,.0f} events in "
        f"{engine['seconds']:.2f} s; {engine['events_per_cpu_s']:,.0f} events per CPU second).",
        "",
        f"Best of {args.rounds} interleaved rounds"
        + (f" (the ratio of each round: {', '.join(round_ratios)})" if round_ratios else "")
        + ":",
        "",
        "| run | bars | seconds (end to end) | bars/s |",
        "|---|---:|---:|---:|",
        *rows,
        "",
        f"Marginal rate, start-up cancelled: **lorabot {marginal:,.0f} bars/s**"
        + (f", nautilus_trader {nt_marginal:,.0f} bars/s" if nt_marginal else "")
        + (f" ({marginal / nt_marginal:.2f}x)" if nt_marginal else "")
        + ".",
        "",
        f"The same from the processes' CPU seconds: lorabot {marginal_cpu:,.0f} bars per CPU "
        "second"
        + (
            f", nautilus_trader {nt_marginal_cpu:,.0f} ({marginal_cpu / nt_marginal_cpu:.2f}x)"
            if nt_marginal_cpu
            else ""
        )
        + ".",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if args.write:
        results = ROOT / "bench" / "RESULTS.md"
        current = results.read_text()
        start = current.index(SECTION)
        after = current.find("\n## ", start + len(SECTION))
        tail = current[after + 1 :] if after != -1 else ""
        results.write_text(current[:start] + text + ("\n" + tail if tail else ""))


if __name__ == "__main__":
    main()
