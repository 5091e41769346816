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
    from training.mix import DataSet
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
    "distill_weight": "distill_weight",
    "valid_fraction": "valid_fraction",
    "patience": "patience",
    "keep_best": "keep_best",
    "eval_every": "eval_every",
    "checkpoint_every": "checkpoint_every",
    "threads": "num_threads",
    "precision": "precision",
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
        click.option(
            "--precision",
            type=click.Choice(["auto", "fp32", "bf16"]),
            help="Training forward passes: bf16 autocast or fp32 (auto: bf16 where the CPU "
            "has native bf16).",
        ),
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


def set_options(function: F) -> F:
    """Which data sets: `--data` (repeatable) with `--format`, or one `--data-mix` file."""
    options = [
        click.option(
            "--data",
            multiple=True,
            # required, except by `lorabot train --task impact` (checked in `chosen_sets`)
            help="Data: a file (CSV text,label / JSONL / TFNS / PhraseBank / FiQA), a PhraseBank "
            "folder, or a known name (tfns, phrasebank); repeat it for several sets.",
        ),
        click.option(
            "--data-mix",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="A TOML file of [[sets]] (path, format, text_column, label_column, label_map, "
            "date_column, weight, test, test_from, valid).",
        ),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(FORMATS),
            multiple=True,
            help="Format of --data (default auto); once for all, or once per --data.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def data_options(function: F) -> F:
    options = [
        click.option("--valid", help="Validation file (default: hold out --valid-fraction)."),
        click.option("--test", help="Test file, scored once at the end."),
        click.option("--limit", type=int, help="Use a seeded random N training examples."),
        click.option("--test-limit", type=int, help="Use a seeded random N test examples."),
    ]
    for option in reversed(options):
        function = option(function)
    return set_options(reading_options(function))


def chosen_sets(params: dict[str, Any]) -> list[DataSet]:
    """The named sets of `set_options` (a lone --data is one set named after its file)."""
    from training.mix import read_mix, sets_from_flags

    data, mix = tuple(params.get("data") or ()), params.get("data_mix")
    formats = tuple(params.get("fmt") or ())
    if mix is not None and data:
        raise UserError("--data and --data-mix: give one of them (list every set in the mix)")
    if mix is not None:
        if formats:
            raise UserError("--format with --data-mix: give each set's format in the mix file")
        return read_mix(mix)
    if not data:
        raise UserError("no data: give --data FILE (repeat it for several sets) or --data-mix")
    return sets_from_flags(data, formats)


def data_request(params: dict[str, Any]) -> DataRequest:
    """What `data_options` asked for, as the pipeline takes it."""
    from training.pipeline import DataRequest

    sets = chosen_sets(params)
    if len(sets) == 1 and params.get("data_mix") is None:
        return DataRequest(
            data=sets[0].path,
            fmt=sets[0].fmt,
            valid=params["valid"],
            test=params["test"],
            limit=params["limit"],
            test_limit=params["test_limit"],
        )
    if params["valid"] or params["test"]:
        raise UserError(
            "--valid and --test belong to one data set: with several, give each set's "
            "`valid` or `test` (or `test_from`) in a --data-mix file"
        )
    return DataRequest(
        data=" + ".join(item.name for item in sets),
        fmt="mix",
        limit=params["limit"],
        test_limit=params["test_limit"],
        sets=tuple(sets),
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
        if value is None or value is False or value == () or name == "config_path":
            continue
        flag = "--" + ("format" if name == "fmt" else name.replace("_", "-"))
        values = value if isinstance(value, tuple) else (value,)
        for one in values:
            parts.extend([flag] if one is True else [flag, str(one)])
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
