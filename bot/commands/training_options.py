"""The options the training commands share, and how they become a `TrainingConfig`.

Every hyperparameter defaults to the `[training]` section of the config, and each has a flag;
only the flags a user set override the config, so one place decides what a flag means for
`train` and `compare` alike.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from pydantic import ValidationError

from bot.cli import settings_for
from bot.config import Settings, TrainingConfig
from bot.errors import UserError
from training.data import FORMATS

if TYPE_CHECKING:
    from training.pipeline import DataRequest

F = TypeVar("F", bound=Callable[..., Any])

METHOD_CHOICE = click.Choice(["lora", "qlora", "prefix", "prompt", "adapter", "full"])


def csv_values(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


# option name -> TrainingConfig key (only options the user set override the config)
_HYPER_KEYS = {
    "base": "base",
    "family": "family",
    "epochs": "epochs",
    "lr": "learning_rate",
    "batch_size": "batch_size",
    "max_length": "max_length",
    "seed": "seed",
    "scheduler": "scheduler",
    "warmup": "warmup_ratio",
    "weight_decay": "weight_decay",
    "grad_accum": "grad_accum",
    "group_by_length": "group_by_length",
    "max_grad_norm": "max_grad_norm",
    "class_weights": "class_weights",
    "label_smoothing": "label_smoothing",
    "valid_fraction": "valid_fraction",
    "patience": "patience",
    "keep_best": "keep_best",
    "eval_every": "eval_every",
    "checkpoint_every": "checkpoint_every",
    "threads": "num_threads",
    "r": "lora_r",
    "alpha": "lora_alpha",
    "dropout": "lora_dropout",
    "targets": "lora_targets",
    "prefix_tokens": "prefix_tokens",
    "prefix_projection": "prefix_projection",
    "prompt_tokens": "prompt_tokens",
    "adapter_size": "adapter_size",
    "adapter_targets": "adapter_targets",
    "label_words": "label_words",
    "prompt": "prompt",
    "agreement": "phrasebank_agreement",
    "fiqa_bearish_below": "fiqa_bearish_below",
    "fiqa_bullish_above": "fiqa_bullish_above",
}


def reading_options(function: F) -> F:
    """How labels are read from PhraseBank (agreement level) and FiQA (score thresholds)."""
    options = [
        click.option(
            "--agreement",
            type=click.Choice(["50", "66", "75", "all"]),
            help="Financial PhraseBank agreement level (read from its folder or archive).",
        ),
        click.option("--fiqa-bearish-below", type=float, help="FiQA scores below: bearish."),
        click.option("--fiqa-bullish-above", type=float, help="FiQA scores above: bullish."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def hyper_options(function: F) -> F:
    """The training hyperparameters shared by `train` and `compare`."""
    options = [
        click.option("--base", help="Base model: a local folder or a hub id (default: MiniLM)."),
        click.option("--family", type=click.Choice(["auto", "encoder", "decoder"])),
        click.option("--epochs", type=float, help="Epochs (may be fractional)."),
        click.option("--lr", type=float, help="Learning rate (default: the method's own)."),
        click.option("--batch-size", type=int),
        click.option("--max-length", type=int, help="Tokens per text (decoders: with prompt)."),
        click.option("--seed", type=int),
        click.option("--scheduler", type=click.Choice(["linear", "cosine", "constant"])),
        click.option("--warmup", type=float, help="Warm-up as a fraction of the steps."),
        click.option("--weight-decay", type=float),
        click.option("--grad-accum", type=int, help="Micro-batches per optimiser step."),
        click.option(
            "--group-by-length/--no-group-by-length",
            default=None,
            help="Batch texts of similar length together (less padding).",
        ),
        click.option("--max-grad-norm", type=float, help="Gradient clipping (0: off)."),
        click.option("--class-weights", type=click.Choice(["none", "balanced", "sqrt"])),
        click.option("--label-smoothing", type=float),
        click.option("--valid-fraction", type=float, help="Held out when no --valid is given."),
        click.option("--patience", type=int, help="Validations without improvement (0: off)."),
        click.option(
            "--keep-best",
            type=click.Choice(["macro_f1", "accuracy", "loss", "last"]),
            help="Which validation's weights are kept at the end.",
        ),
        click.option("--eval-every", type=int, help="Steps between validations (0: epoch)."),
        click.option("--checkpoint-every", type=int, help="Steps between checkpoints."),
        click.option("--threads", type=int, help="torch CPU threads (0: default)."),
        click.option("--r", "r", type=int, help="LoRA/QLoRA rank."),
        click.option("--alpha", type=int, help="LoRA/QLoRA alpha."),
        click.option("--dropout", type=float, help="LoRA/QLoRA dropout."),
        click.option("--targets", help="LoRA target modules, comma-separated."),
        click.option("--prefix-tokens", type=int),
        click.option("--prefix-projection/--no-prefix-projection", default=None),
        click.option("--prompt-tokens", type=int),
        click.option("--adapter-size", type=int, help="Bottleneck width."),
        click.option("--adapter-targets", help="Modules adapters follow, comma-separated."),
        click.option("--label-words", help="Decoders: bearish,neutral,bullish words."),
        click.option("--prompt", help="Decoders: the prompt, with {text}."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def data_options(function: F) -> F:
    options = [
        click.option(
            "--data",
            # required, except by `lorabot train --task impact` (checked in `data_request`)
            help="Training data: a file (CSV text,label / JSONL / TFNS / PhraseBank / FiQA), "
            "a PhraseBank folder, or a known name (tfns, phrasebank).",
        ),
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto"),
        click.option("--valid", help="Validation file (default: hold out --valid-fraction)."),
        click.option("--test", help="Test file, scored once at the end."),
        click.option("--limit", type=int, help="Use a seeded random N training examples."),
        click.option("--test-limit", type=int, help="Use a seeded random N test examples."),
    ]
    for option in reversed(options):
        function = option(function)
    return reading_options(function)


def data_request(params: dict[str, Any]) -> DataRequest:
    """What `data_options` asked for, as the pipeline takes it."""
    from training.pipeline import DataRequest

    if not params.get("data"):
        raise click.UsageError("Missing option '--data'.")
    return DataRequest(
        data=params["data"],
        fmt=params["fmt"],
        valid=params["valid"],
        test=params["test"],
        limit=params["limit"],
        test_limit=params["test_limit"],
    )


def training_config(settings: Settings, params: dict[str, Any], **fixed: Any) -> TrainingConfig:
    values = settings.training.model_dump()
    for option, key in _HYPER_KEYS.items():
        value = params.get(option)
        if value is None:
            continue
        if key in ("lora_targets", "adapter_targets", "label_words"):
            value = csv_values(value)
        values[key] = value
    values.update(fixed)
    try:
        return TrainingConfig.model_validate(values)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'training'}: {e['msg']}"
            for e in error.errors()
        )
        raise UserError(f"bad training settings: {problems}") from None


def command_line(ctx: click.Context) -> str:
    """The command as typed (for the model card), or rebuilt from its options."""
    argv = sys.argv
    if argv and (Path(argv[0]).name == "lorabot" or argv[0].endswith("bot/__main__.py")):
        return "lorabot " + shlex.join(argv[1:])
    parts = ["lorabot", ctx.info_name or "train"]
    for name, value in ctx.params.items():
        if value is None or value is False or name == "config_path":
            continue
        flag = "--" + name.replace("_", "-")
        parts.extend([flag] if value is True else [flag, str(value)])
    return shlex.join(parts)


def setup_command(ctx: click.Context, config_path: Path | None) -> Settings:
    """Settings, logs to stderr (stdout is for results), quiet libraries."""
    from bot.log import setup_logging
    from training.runtime import quiet_libraries

    settings = settings_for(ctx, config_path)
    setup_logging(settings.log.level, settings.log.format, file=settings.log.file)
    quiet_libraries()
    return settings


def echo_err(message: str) -> None:
    click.echo(message, err=True)
