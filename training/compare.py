"""Train several methods on one split and lay the trade-offs side by side.

The split is made once and written to `OUT/split/` so every method sees exactly the same
examples. Each method trains in its own Python process by default, so the peak memory reported is
that method's alone (a process never gives memory back, so in one process the figures would pile
up). Per method: trainable parameters, training time, peak RSS, the model's weight memory (where
QLoRA's 4-bit base shows), inference latency per item, and accuracy / F1 on the test split (the
validation split when there is no test data).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.config import TrainingConfig
from bot.errors import UserError
from bot.log import get_logger
from training.data import load_examples, write_jsonl
from training.methods import METHODS
from training.pipeline import DataRequest, prepare_split, train_model
from training.precision import resolve_training_precision
from training.splits import Split

log = get_logger(__name__)

COLUMNS = (
    ("method", "method", "{}"),
    ("precision", "precision", "{}"),
    ("trainable", "trainable", "{:,}"),
    ("trainable %", "trainable_pct", "{:.2f}"),
    ("s/epoch", "seconds_per_epoch", "{:.1f}"),
    ("train s", "train_seconds", "{:.1f}"),
    ("train ex/s", "examples_per_second", "{:.1f}"),
    ("peak RSS MB", "peak_rss_mb", "{:.0f}"),
    ("weights MB", "weights_mb", "{:.1f}"),
    ("ms/item", "latency_ms", "{:.2f}"),
    ("ms (1 item)", "latency_single_ms", "{:.1f}"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("macro-F1", "macro_f1", "{:.4f}"),
    ("weighted-F1", "weighted_f1", "{:.4f}"),
)


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure_latency(classifier: Any, texts: Sequence[str]) -> tuple[float, float]:
    """(ms per item in batches, median ms for a single item), after a warm-up call."""
    sample = list(texts[:256])
    if not sample:
        return 0.0, 0.0
    classifier.predict_proba(sample[:8])
    started = time.perf_counter()
    classifier.predict_proba(sample)
    batched = (time.perf_counter() - started) * 1000 / len(sample)
    singles = []
    for text in sample[:20]:
        started = time.perf_counter()
        classifier.predict_proba([text])
        singles.append((time.perf_counter() - started) * 1000)
    return batched, statistics.median(singles)


def run_method(
    cfg: TrainingConfig,
    split: Split,
    info: dict[str, Any],
    out: Path,
    *,
    progress: bool = False,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Train one method and measure it; the result row of the comparison."""
    from training.classifier import load_model

    outcome = train_model(
        cfg,
        DataRequest(data=str(info.get("train", ""))),
        out,
        overwrite=True,
        progress=progress,
        command=f"lorabot compare (method {cfg.method})",
        split=(split, info),
        echo=echo,
    )
    classifier = load_model(out, batch_size=cfg.eval_batch_size)
    texts = [e.text for e in (split.test or split.valid)]
    batched, single = measure_latency(classifier, texts)
    scores = outcome.test or outcome.valid
    return {
        "method": cfg.method,
        "precision": resolve_training_precision(cfg.precision, cfg.method),  # what trained
        "trainable": outcome.trainable,
        "total": outcome.total,
        "trainable_pct": 100 * outcome.trainable / outcome.total,
        "train_seconds": outcome.seconds,
        "seconds_per_epoch": outcome.seconds_per_epoch,
        "epochs": outcome.epochs_done,
        # training examples gone through per second of the loop (the step time, no validation)
        "examples_per_second": (
            len(split.train) * outcome.epochs_done / outcome.seconds if outcome.seconds else 0.0
        ),
        "stopped_early": outcome.stopped_early,
        "peak_rss_mb": peak_rss_mb(),
        "weights_mb": outcome.weights_bytes / 2**20,
        "latency_ms": batched,
        "latency_single_ms": single,
        "accuracy": scores["accuracy"],
        "macro_f1": scores["macro_f1"],
        "weighted_f1": scores["weighted_f1"],
        "scored_on": "test" if outcome.test else "valid",
        "n_scored": scores["n"],
        "valid_accuracy": outcome.valid["accuracy"],
        "valid_macro_f1": outcome.valid["macro_f1"],
        "folder": str(out),
    }


def _write_split(split: Split, folder: Path) -> None:
    write_jsonl(split.train, folder / "train.jsonl")
    write_jsonl(split.valid, folder / "valid.jsonl")
    if split.test:
        write_jsonl(split.test, folder / "test.jsonl")


def read_split(folder: Path) -> Split:
    test = folder / "test.jsonl"
    return Split(
        train=load_examples(folder / "train.jsonl", "jsonl"),
        valid=load_examples(folder / "valid.jsonl", "jsonl"),
        test=load_examples(test, "jsonl") if test.is_file() else [],
        strategy="given",
    )


def compare_methods(
    cfg: TrainingConfig,
    request: DataRequest,
    out: Path,
    methods: Sequence[str],
    *,
    in_process: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    echo: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    say = echo or (lambda message: log.info(message))
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise UserError(f"unknown method(s) {unknown}: choose from {', '.join(METHODS)}")
    if (out / "compare.json").exists() and not overwrite:
        raise UserError(f"{out}: holds an earlier comparison; pass --overwrite to replace it")
    out.mkdir(parents=True, exist_ok=True)
    split, info = prepare_split(request, cfg)
    _write_split(split, out / "split")
    say(
        f"comparing {', '.join(methods)} on {len(split.train):,} train / {len(split.valid):,} "
        f"valid / {len(split.test):,} test examples"
    )
    results = []
    for name in methods:
        method_cfg = TrainingConfig.model_validate({**cfg.model_dump(), "method": name})
        folder = out / name
        say(f"[{name}] training")
        try:
            if in_process:
                row = run_method(method_cfg, split, info, folder, progress=progress, echo=say)
            else:
                row = _run_subprocess(method_cfg, out, info, folder, progress)
        except UserError as error:
            say(f"[{name}] failed: {error}")
            row = {"method": name, "error": str(error)}
        results.append(row)
        if "error" not in row:
            say(
                f"[{name}] accuracy {row['accuracy']:.4f} macro-F1 {row['macro_f1']:.4f} "
                f"({row['seconds_per_epoch']:.1f} s/epoch, peak RSS {row['peak_rss_mb']:.0f} MB)"
            )
    document: dict[str, Any] = {
        "data": info,
        "settings": cfg.model_dump(mode="json"),
        "results": results,
        "in_process": in_process,
    }
    (out / "compare.json").write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    (out / "compare.md").write_text(render_table(results) + "\n", encoding="utf-8")
    ok = [r for r in results if "error" not in r]
    if ok:
        plot(ok, out / "compare.png")
    return results


def _run_subprocess(
    cfg: TrainingConfig, out: Path, info: dict[str, Any], folder: Path, progress: bool
) -> dict[str, Any]:
    job = {
        "settings": cfg.model_dump(mode="json"),
        "split": str(out / "split"),
        "info": info,
        "out": str(folder),
        "progress": progress,
    }
    job_path = out / f".job-{cfg.method}.json"
    result_path = out / f".result-{cfg.method}.json"
    job_path.write_text(json.dumps(job), encoding="utf-8")
    result_path.unlink(missing_ok=True)
    # The worker must import this very checkout of lorabot, wherever it was started from.
    root = str(Path(__file__).resolve().parent.parent)
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    completed = subprocess.run(
        [sys.executable, "-m", "training.compare_worker", str(job_path), str(result_path)],
        env=env,
        check=False,
    )
    if completed.returncode != 0 or not result_path.is_file():
        raise UserError(f"the {cfg.method} run exited with status {completed.returncode}")
    row: dict[str, Any] = json.loads(result_path.read_text(encoding="utf-8"))
    job_path.unlink(missing_ok=True)
    result_path.unlink(missing_ok=True)
    return row


def render_table(results: Sequence[dict[str, Any]]) -> str:
    header = "| " + " | ".join(title for title, _, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" if key == "method" else "---:" for _, key, _ in COLUMNS) + "|"
    lines = [header, rule]
    for row in results:
        if "error" in row:
            lines.append(f"| {row['method']} | failed: {row['error']} |")
            continue
        cells = [fmt.format(row[key]) for _, key, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(results: Sequence[dict[str, Any]], path: Path) -> Path:
    """One bar chart per measure, methods side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("trainable_pct", "trainable parameters (%)"),
        ("seconds_per_epoch", "training time (s / epoch)"),
        ("peak_rss_mb", "peak memory (RSS, MB)"),
        ("weights_mb", "model weights (MB)"),
        ("latency_ms", "inference latency (ms / item)"),
        ("accuracy", "accuracy"),
        ("macro_f1", "macro-F1"),
        ("weighted_f1", "weighted-F1"),
    ]
    names = [r["method"] for r in results]
    figure, axes = plt.subplots(2, 4, figsize=(16, 7))
    for axis, (key, title) in zip(axes.flat, panels, strict=True):
        values = [float(r[key]) for r in results]
        bars = axis.bar(names, values, color="#4C72B0")
        axis.set_title(title, fontsize=10)
        axis.tick_params(axis="x", labelrotation=30, labelsize=9)
        if key in ("accuracy", "macro_f1", "weighted_f1"):
            low = min(values)
            axis.set_ylim(max(0.0, low - 0.1), 1.0)
        for bar, value in zip(bars, values, strict=True):
            axis.annotate(
                f"{value:.3g}",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
    figure.suptitle("lorabot compare: fine-tuning methods on one split")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
