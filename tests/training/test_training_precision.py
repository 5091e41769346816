"""`[training] precision`: bf16 autocast of the training forward passes, fp32 everywhere else."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from adapters.model.inference import cpu_has_native_bf16
from bot.cli import cli
from bot.config import TrainingConfig
from training.data import load_examples
from training.loop_state import fingerprint
from training.precision import resolve_training_precision, training_autocast
from training.splits import Split

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"


def test_auto_is_bf16_only_where_the_cpu_has_it_and_never_for_qlora() -> None:
    assert resolve_training_precision("auto", "lora") == (
        "bf16" if cpu_has_native_bf16() else "fp32"
    )
    assert resolve_training_precision("bf16", "prefix") == "bf16"
    assert resolve_training_precision("fp32", "lora") == "fp32"
    assert resolve_training_precision("bf16", "qlora") == "fp32"


def test_the_autocast_rounds_the_products_not_the_weights() -> None:
    layer = torch.nn.Linear(8, 4)
    x = torch.randn(2, 8)
    with training_autocast("bf16")():
        y = layer(x)
    assert y.dtype == torch.bfloat16 and layer.weight.dtype == torch.float32
    with training_autocast("fp32")():
        assert layer(x).dtype == torch.float32


def test_a_bf16_run_resumes_only_as_bf16(news_csv: Path) -> None:
    rows = load_examples(news_csv, "auto")
    split = Split(train=rows, valid=rows[:4], test=[], strategy="given")
    fp32, bf16 = (fingerprint(TrainingConfig(precision=p), {}, split) for p in ("fp32", "bf16"))
    assert fp32 != bf16
    # an fp32 run's fingerprint is what every run before the setting had: their checkpoints resume
    assert fp32 == fingerprint(TrainingConfig(precision="fp32", num_threads=3), {}, split)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_a_run_in_either_precision_learns_and_says_which_it_used(
    precision: str, tiny_bert: Path, tmp_path: Path
) -> None:
    out = tmp_path / precision
    args = ["train", "--data", str(FIXTURES / "news.csv"), "--base", str(tiny_bert), "--out",
            str(out), "--epochs", "6", "--batch-size", "8", "--threads", "1", "--lr", "0.005",
            "--r", "4", "--no-progress", "--precision", precision]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "training.json").read_text())
    assert report["precision"] == precision
    losses = [entry["train_loss"] for entry in report["history"] if "train_loss" in entry]
    assert losses[-1] < losses[0]  # it learnt, with the products rounded to bf16 or not
    from safetensors.torch import load_file

    saved = next(out.glob("*.safetensors"))  # the adapter is saved as it was trained: fp32
    assert all(t.dtype == torch.float32 for t in load_file(str(saved)).values())


def test_precision_must_be_a_known_name(tiny_config: Callable[..., TrainingConfig]) -> None:
    with pytest.raises(ValueError, match="precision"):
        tiny_config(precision="fp16")
    result = CliRunner().invoke(cli, ["train", "--data", "x.csv", "--precision", "fp16"])
    assert result.exit_code == 2 and "'fp16' is not one of 'auto', 'fp32', 'bf16'" in result.output
