"""Benchmark: every fine-tuning method on the embedded base (all-MiniLM-L6-v2) and TFNS.

Runs `lorabot compare` (each method in its own process, so peak RSS is that method's own) on
../shared/data/tfns (train on sent_train.csv, score on sent_valid.csv, which no method trains or
selects on) and writes the table into this method's section of bench/RESULTS.md: per method,
trainable %, seconds per epoch, peak RSS, latency per item, accuracy and macro-F1, plus an
estimate of the full run's duration on this machine from the measured time per example.

    python bench/train_compare.py --epochs 1 --limit 2000          # a short run (~tens of minutes)
    python bench/train_compare.py                                  # the full run (hours on 2 cores)

It measures; it never passes or fails anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "RESULTS.md"
HEADING = "## Fine-tuning methods (`bench/train_compare.py`)"
FULL_TRAIN_ROWS = 9543
DEFAULT_EPOCHS = 5.0


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return f"{cpu}, {os.cpu_count()} cores{memory}, {platform.system()} {platform.release()}"


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=DEFAULT_EPOCHS)
    parser.add_argument("--limit", type=int, default=0, help="training rows (0: all 9,543)")
    parser.add_argument("--test-limit", type=int, default=0, help="scored rows (0: all 2,388)")
    parser.add_argument("--methods", default="lora,qlora,prefix,prompt,adapter,full")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per method")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "tfns")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-train-compare")
    parser.add_argument("--no-write", action="store_true", help="do not update RESULTS.md")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="rewrite the RESULTS.md section from the compare.json already in --out",
    )
    parser.add_argument(
        "--wall-seconds", type=float, default=0.0, help="with --render-only: the run's duration"
    )
    return parser.parse_args()


def main() -> int:
    args = parse()
    if args.render_only:
        return publish(args, _recorded_wall(args))
    train = args.data / "sent_train.csv"
    valid = args.data / "sent_valid.csv"
    if not train.is_file() or not valid.is_file():
        print(
            f"no TFNS data in {args.data} (needs sent_train.csv, sent_valid.csv)", file=sys.stderr
        )
        return 2
    command = [
        sys.executable,
        "-m",
        "bot",
        "compare",
        "--methods",
        args.methods,
        "--data",
        str(train),
        "--format",
        "tfns",
        "--test",
        str(valid),
        "--out",
        str(args.out),
        "--epochs",
        f"{args.epochs:g}",
        "--overwrite",
        "--no-progress",
    ]
    if args.limit:
        command += ["--limit", str(args.limit)]
    if args.test_limit:
        command += ["--test-limit", str(args.test_limit)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, check=False)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        print(f"lorabot compare exited with {done.returncode}", file=sys.stderr)
        return done.returncode
    (args.out / "bench.json").write_text(json.dumps({"wall_seconds": wall}), encoding="utf-8")
    return publish(args, wall)


def _recorded_wall(args: argparse.Namespace) -> float:
    if args.wall_seconds:
        return float(args.wall_seconds)
    try:
        return float(json.loads((args.out / "bench.json").read_text())["wall_seconds"])
    except (OSError, ValueError, KeyError):
        return 0.0


def publish(args: argparse.Namespace, wall: float) -> int:
    document = json.loads((args.out / "compare.json").read_text(encoding="utf-8"))
    section = render(document, args, wall)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"updated {RESULTS}", file=sys.stderr)
    return 0


def _shown(args: argparse.Namespace) -> str:
    parts = ["python bench/train_compare.py"]
    if args.epochs != DEFAULT_EPOCHS:
        parts.append(f"--epochs {args.epochs:g}")
    for flag in ("limit", "test_limit", "threads"):
        value = getattr(args, flag)
        if value:
            parts.append(f"--{flag.replace('_', '-')} {value}")
    if args.methods != "lora,qlora,prefix,prompt,adapter,full":
        parts.append(f"--methods {shlex.quote(args.methods)}")
    return " ".join(parts)


def render(document: dict, args: argparse.Namespace, wall: float) -> str:
    data = document["data"]
    results = [r for r in document["results"] if "error" not in r]
    failed = [r for r in document["results"] if "error" in r]
    batch = document["settings"]["eval_batch_size"]
    rows = [
        "| method | trainable % | s/epoch | train ex/s | peak RSS MB | weights MB "
        f"| ms/item (batch {batch}) "
        "| ms (1 item) | accuracy | macro-F1 | stopped at epoch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r['method']} | {r['trainable_pct']:.2f} | {r['seconds_per_epoch']:.0f} "
            f"| {r.get('examples_per_second', 0.0):.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['weights_mb']:.1f} | {r['latency_ms']:.2f} "
            f"| {r['latency_single_ms']:.1f} | {r['accuracy']:.4f} | {r['macro_f1']:.4f} "
            f"| {r['epochs']:.2f}{' (early stop)' if r['stopped_early'] else ''} |"
        )
    for r in failed:
        rows.append(f"| {r['method']} | failed: {r['error']} |")
    n_train = data["n_train"] + data["n_valid"]
    full_epoch = sum(r["seconds_per_epoch"] * FULL_TRAIN_ROWS / max(n_train, 1) for r in results)
    estimate = full_epoch * DEFAULT_EPOCHS
    settings = document["settings"]
    lines = [
        HEADING,
        "",
        f"- machine: {machine()}",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- command: `{_shown(args)}` (runs `lorabot compare`; each method in its own process)",
        f"- data: TFNS `sent_train.csv` ({data['n_train']:,} train / {data['n_valid']:,} "
        f"validation for early stopping, {data['split']} split) and `sent_valid.csv` "
        f"({data['n_test']:,} scored, never trained or selected on)",
        f"- settings: each method's default learning rate, batch {settings['batch_size']}, "
        f"max length {settings['max_length']}, {settings['epochs']:g} epoch(s), "
        f"{settings['scheduler']} decay, class weights {settings['class_weights']}, "
        f"seed {settings['seed']}",
        f"- this run took {wall / 60:.1f} min wall clock",
        "",
        *rows,
        "",
        "trainable %: of all parameters (4-bit weights counted as the parameters they stand for); "
        "weights MB: parameters and buffers in memory (QLoRA's 4-bit base shows here; peak RSS "
        "is dominated by the torch runtime and activations); latency: the saved model reloaded "
        "and scored in batches, and one item at a time (median).",
        "",
        f"Full run here (all {FULL_TRAIN_ROWS:,} rows, {DEFAULT_EPOCHS:g} epochs, all methods "
        f"above, before early stopping): about {estimate / 3600:.1f} h, extrapolated from this "
        "run's measured seconds per example; one LoRA epoch on the full data is about "
        + _lora_epoch(results, n_train)
        + ".",
        "",
        *_default_adapter(),
    ]
    return "\n".join(lines)


def _default_adapter() -> list[str]:
    """The committed default adapter's own figures (from its eval.json), for reference."""
    from bot.manifest import default_model_dir  # where the product finds it, not a copy

    folder = default_model_dir()
    try:
        scores = json.loads((folder / "eval.json").read_text(encoding="utf-8"))
        manifest = json.loads((folder / "lorabot.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [
        "The committed default adapter (`adapters/model/weights/default/`, LoRA with the toolkit's "
        f"defaults, full data, {manifest['eval'].get('n', '?')} scored): accuracy "
        f"{scores['accuracy']:.4f}, macro-F1 {scores['macro_f1']:.4f}, weighted-F1 "
        f"{scores['weighted_f1']:.4f} on `sent_valid.csv`; its README.md has the command.",
        "",
    ]


def _lora_epoch(results: list[dict], n_train: int) -> str:
    for r in results:
        if r["method"] == "lora":
            return f"{r['seconds_per_epoch'] * FULL_TRAIN_ROWS / max(n_train, 1) / 60:.0f} min"
    return "(LoRA not in this run)"


def write_section(section: str) -> None:
    text = RESULTS.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(HEADING) + r".*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section.rstrip() + "\n\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    RESULTS.write_text(text.rstrip() + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
