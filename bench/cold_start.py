"""Cold start: `lorabot --help` and `lorabot classify "..."` in fresh processes, median of N.

Three figures per source tree (`--tree`, default this one; give another checkout, e.g. the
commit before a change, to measure before and after in the same run):
- `--help`: the lazy command table alone (target < 0.3 s);
- `classify`, answer cached: the headline's answer is in the signal cache (a headline seen
  before, the common case for a re-run), so the model never loads;
- `classify`, not cached (`--no-cache`): the embedded default model loads and answers: since
  `[model] runtime = "onnx"` the cached ONNX graph on onnxruntime + tokenizers, no torch (the
  warm-up run, not counted, exports it once into the tree's own cache folder); on a tree before
  that, torch, the weights, one forward pass.

Each figure is the wall time of `python -m bot ...` from spawn to exit, the median of `--repeat`
fresh processes (the first, warming the file cache and the signal cache, is not counted). With
`--importtime` it also prints the slowest top-level imports of the cached classify
(`python -X importtime`), which is where the time goes.

It measures and prints markdown for bench/RESULTS.md; it decides nothing.

    python bench/cold_start.py [--tree /path/to/other/checkout ...] [--repeat 5] [--importtime]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADLINE = "Bitcoin surges as ETF inflows jump"


def run(
    tree: Path, args: list[str], env: dict[str, str], extra: tuple[str, ...] = ()
) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, *extra, "-m", "bot", *args],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {tree}: {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def interleaved(
    trees: list[Path], args: list[str], envs: dict[Path, dict[str, str]], repeat: int
) -> dict[Path, list[tuple[float, float]]]:
    """One warm-up each, then the trees in turn `repeat` times: a load spike on this shared
    machine hits every tree alike rather than whichever ran during it."""
    for tree in trees:
        run(tree, args, envs[tree])
    times: dict[Path, list[tuple[float, float]]] = {tree: [] for tree in trees}
    for _ in range(repeat):
        for tree in trees:
            times[tree].append(run(tree, args, envs[tree]))
    return times


def bare_python(repeat: int) -> float:
    """The floor no change to lorabot can go under: this interpreter starting and exiting."""
    values = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        values.append(time.perf_counter() - start)
    return statistics.median(values)


def slowest_imports(tree: Path, env: dict[str, str], count: int = 12) -> list[tuple[int, str]]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", "classify", HEADLINE],
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if not cumulative.strip().isdigit():
            continue
        depth = (len(name) - len(name.lstrip())) // 2
        if depth <= 2:
            rows.append((int(cumulative), "  " * (depth - 1) + name.strip()))
    return sorted(rows, reverse=True)[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", default=[])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--importtime", action="store_true")
    args = parser.parse_args()
    trees = [ROOT, *args.tree]
    load = os.getloadavg()[0]
    print(
        f"Python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs, "
        f"load average {load:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; median of "
        f"{args.repeat} fresh processes (after one warm-up), wall seconds (CPU seconds, user + "
        "system, of the process)\n"
    )
    print("| tree | `--help` | `classify`, cached | `classify --no-cache` (model loads) |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        envs = {}
        for n, tree in enumerate(trees):
            home = Path(tmp) / str(n)
            envs[tree] = {
                **os.environ,
                "XDG_CACHE_HOME": str(home / "cache"),
                "XDG_DATA_HOME": str(home / "data"),
                "XDG_CONFIG_HOME": str(home / "config"),
            }
        figures = [
            interleaved(trees, command, envs, args.repeat)
            for command in (
                ["--help"],
                ["classify", HEADLINE],
                ["classify", "--no-cache", HEADLINE],
            )
        ]
        for tree in trees:
            cells = " | ".join(
                f"{statistics.median(w for w, _ in f[tree]):.2f} "
                f"({statistics.median(c for _, c in f[tree]):.2f} CPU)"
                for f in figures
            )
            print(f"| {tree} | {cells} |")
        print(f"\n`python -c pass` (the interpreter alone): {bare_python(args.repeat):.2f} s")
        if args.importtime:
            for tree in trees:
                print(f"\nslowest imports of the cached classify, {tree} (cumulative ms):\n")
                for micros, name in slowest_imports(tree, envs[tree]):
                    print(f"    {micros / 1000:8.1f}  {name}")


if __name__ == "__main__":
    main()
