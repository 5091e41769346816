"""Benchmark: training examples per CPU second of the default LoRA recipe, fp32 (before) against
bf16 autocast with `nn.Dropout`, and bf16 with the cheaper dropout masks a bf16 run trains with
(after: `[training] precision = "bf16"`, `training/fast_dropout.py`), interleaved in one process.

The default recipe (MiniLM, LoRA r16 on every linear layer plus the head, batch 32, max length
64, length-grouped batches) on a seeded sample of TFNS `sent_train.csv`; the same model, the same
batches in the same order, each round timing `--steps` optimiser steps of each variant one right
after the other, so a shared, noisy machine loads both alike. CPU seconds (time.process_time), one
torch thread by default: the figure is the work per example, not the share of a busy machine.

    python bench/train_speed.py --rounds 3 --steps 8

It measures; it never passes or fails anything.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("LORABOT_SHARED_DATA", ROOT.parent / "shared" / "data"))


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="optimiser steps per variant a round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rows", type=int, default=2000, help="TFNS rows sampled (seeded)")
    parser.add_argument("--no-dropout", action="store_true", help="also time dropout off")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table")
    return parser.parse_args()


@contextlib.contextmanager
def no_dropout(model: object) -> Iterator[None]:
    """Every dropout p set to 0 (attention's too): another recipe, timed only for scale."""
    from torch import nn

    modules = [m for m in model.modules() if isinstance(m, nn.Dropout)]  # type: ignore[attr-defined]
    saved = [m.p for m in modules]
    for module in modules:
        module.p = 0.0
    try:
        yield
    finally:
        for module, p in zip(modules, saved, strict=True):
            module.p = p


@contextlib.contextmanager
def use_precision(trainer: object, precision: str) -> Iterator[None]:
    """The trainer's forward passes in `precision` for the duration (what the setting picks)."""
    saved = trainer.precision  # type: ignore[attr-defined]
    trainer.precision = precision  # type: ignore[attr-defined]
    try:
        yield
    finally:
        trainer.precision = saved  # type: ignore[attr-defined]


def main() -> None:
    args = parse()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from bot.config import TrainingConfig
    from training.data import load_examples, sample
    from training.families import encode_texts
    from training.fast_dropout import fast_dropout
    from training.pipeline import build_trainable
    from training.runtime import quiet_libraries
    from training.splits import Split
    from training.trainer import Encoded, Trainer

    quiet_libraries()
    source = DATA / "tfns" / "sent_train.csv"
    if not source.is_file():
        sys.exit(f"no {source}: set LORABOT_SHARED_DATA to the shared data folder")
    cfg = TrainingConfig(num_threads=args.threads)
    rows = sample(load_examples(source, "tfns"), args.rows, cfg.seed)
    built = build_trainable(cfg)

    def encode(texts: list[str]) -> list[list[int]]:
        return encode_texts(built.base.tokenizer, texts, "encoder", cfg.max_length)

    split = Split(train=rows, valid=rows[:32], test=[], strategy="given")
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            built.model,
            cfg,
            "encoder",
            split,
            Encoded.of(rows, encode),
            Encoded.of(rows[:32], encode),
            pad_id=int(built.base.tokenizer.pad_token_id or 0),
            token_ids=None,
            learning_rate=1e-3,
            out=Path(out),
            fingerprint="bench",
            progress=False,
        )
        batches = trainer._epoch_batches(0)
        built.model.train()
        trainer._step([batches[0]])  # warm-up: first-call allocations

        @contextlib.contextmanager
        def bf16_run() -> Iterator[None]:
            """What `Trainer.run` does for a bf16 run: autocast and the fast masks."""
            with use_precision(trainer, "bf16"), fast_dropout(built.model):
                yield

        variants: dict[str, Callable[[], contextlib.AbstractContextManager[object]]] = {
            "before (fp32)": lambda: use_precision(trainer, "fp32"),
            "bf16 autocast, nn.Dropout": lambda: use_precision(trainer, "bf16"),
            "after (bf16 autocast + fast masks)": bf16_run,
        }
        if args.no_dropout:
            variants["no dropout (another recipe)"] = lambda: no_dropout(built.model)
        rates: dict[str, list[float]] = {name: [] for name in variants}
        position = 1
        for _ in range(args.rounds):
            chosen = batches[position : position + args.steps]
            position += args.steps
            for name, context in variants.items():
                count = sum(len(b) for b in chosen)
                with context():
                    started = time.process_time()
                    for batch in chosen:
                        trainer._step([batch])
                    seconds = time.process_time() - started
                rates[name].append(count / seconds)
                print(f"{name}: {count} examples, {seconds:.2f} CPU s, {count / seconds:.1f}/s")
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            for name, context in variants.items():
                with context(), profile(activities=[ProfilerActivity.CPU]) as prof:
                    for batch in batches[position : position + 2]:
                        trainer._step([batch])
                print(name)
                print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    baseline = rates["before (fp32)"]
    for name, values in rates.items():
        ratios = [n / o for o, n in zip(baseline, values, strict=True)]
        print(
            f"{name}: median {statistics.median(values):.1f} examples per CPU second, "
            f"median of the rounds' ratio to fp32 {statistics.median(ratios):.2f}"
        )
    print(
        f"({args.rounds} rounds of {args.steps} steps, {torch.get_num_threads()} thread(s), "
        f"load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
