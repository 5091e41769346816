"""`lorabot train`, `eval`, `compare` and `export`.

Every hyperparameter defaults to the `[training]` section of the config, and each has a flag.
stdout carries only results (scores, tables, paths); progress bars and logs go to stderr. torch
and transformers are imported inside the commands, so `lorabot --help` stays light.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from bot.cli import config_option, settings_for
from bot.config import Settings, TrainingConfig
from bot.errors import UserError
from training.data import FORMATS

F = TypeVar("F", bound=Callable[..., Any])

METHOD_CHOICE = click.Choice(["lora", "qlora", "prefix", "prompt", "adapter", "full"])


def _csv(value: str | None) -> tuple[str, ...] | None:
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
            required=True,
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


def training_config(settings: Settings, params: dict[str, Any], **fixed: Any) -> TrainingConfig:
    values = settings.training.model_dump()
    for option, key in _HYPER_KEYS.items():
        value = params.get(option)
        if value is None:
            continue
        if key in ("lora_targets", "adapter_targets", "label_words"):
            value = _csv(value)
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


def _command_line(ctx: click.Context) -> str:
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


def _setup(ctx: click.Context, config_path: Path | None) -> Settings:
    """Settings, logs to stderr (stdout is for results), quiet libraries."""
    from bot.log import setup_logging
    from training.runtime import quiet_libraries

    settings = settings_for(ctx, config_path)
    setup_logging(settings.log.level, settings.log.format, file=settings.log.file)
    quiet_libraries()
    return settings


def _err(message: str) -> None:
    click.echo(message, err=True)


# ---------------------------------------------------------------------------------------------
# train


@click.command("train")
@click.option("--method", type=METHOD_CHOICE, help="Fine-tuning method (default from config).")
@data_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@hyper_options
@click.option("--resume", is_flag=True, help="Continue from the latest checkpoint in --out.")
@click.option(
    "--resume-from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Continue from this checkpoint folder.",
)
@click.option("--overwrite", is_flag=True, help="Replace a trained model already in --out.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep checkpoints after a finished run.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
@config_option
@click.pass_context
def train(ctx: click.Context, **params: Any) -> None:
    """Fine-tune a sentiment model (LoRA, QLoRA, prefix, prompt, adapter or full).

    Example: lorabot train --data news.csv --out runs/lora
    (CSV with a header text,label and bearish/neutral/bullish labels).
    """
    settings = _setup(ctx, params["config_path"])
    from training.metrics import headline
    from training.pipeline import DataRequest, train_model

    fixed = {"method": params["method"]} if params["method"] else {}
    cfg = training_config(settings, params, **fixed)
    request = DataRequest(
        data=params["data"],
        fmt=params["fmt"],
        valid=params["valid"],
        test=params["test"],
        limit=params["limit"],
        test_limit=params["test_limit"],
    )
    resume: bool | Path = params["resume_from"] or bool(params["resume"])
    outcome = train_model(
        cfg,
        request,
        params["out"],
        resume=resume,
        overwrite=params["overwrite"],
        keep_checkpoints=params["keep_checkpoints"],
        progress=params["progress"],
        command=_command_line(ctx),
        echo=_err,
    )
    click.echo(f"model: {outcome.out}")
    click.echo(
        f"method: {cfg.method}  trainable parameters: {outcome.trainable:,} of "
        f"{outcome.total:,} ({100 * outcome.trainable / outcome.total:.2f}%)"
    )
    click.echo(
        f"epochs: {outcome.epochs_done:.2f}{' (stopped early)' if outcome.stopped_early else ''}"
        f"  training time: {outcome.seconds:.1f} s ({outcome.seconds_per_epoch:.1f} s/epoch)"
    )
    click.echo(f"validation: {headline(outcome.valid)}")
    if outcome.test is not None:
        click.echo(f"test: {headline(outcome.test)}")


# ---------------------------------------------------------------------------------------------
# eval


@click.command("eval")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Model folder (default: the shipped default adapter).",
)
@click.option("--base", help="Override the base model named in the model's manifest.")
@click.option("--data", required=True, help="A labelled file, or a known name (its test split).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="auto")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--limit", type=int, help="Score a seeded random N examples.")
@click.option("--batch-size", type=int, default=None, help="Texts per forward pass.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (0: default).")
@reading_options
@config_option
@click.pass_context
def eval_command(
    ctx: click.Context,
    model_dir: Path | None,
    base: str | None,
    data: str,
    fmt: str,
    json_path: Path | None,
    limit: int | None,
    batch_size: int | None,
    threads: int | None,
    config_path: Path | None,
    **reading: Any,
) -> None:
    """Score a model: accuracy, macro/weighted F1, per-class precision/recall, confusion matrix."""
    settings = _setup(ctx, config_path)
    from training.data import load_examples, sample
    from training.classifier import load_model
    from training.metrics import evaluate_predictions, render_report
    from training.pipeline import read_options, write_eval_json

    cfg = training_config(settings, reading)
    examples = load_examples(data, fmt, read_options(cfg), split="test")
    examples = sample(examples, limit, cfg.seed)
    model = load_model(
        model_dir,
        base=base,
        num_threads=threads if threads is not None else cfg.num_threads,
        batch_size=batch_size or cfg.eval_batch_size,
    )
    probs = model.predict_proba([e.text for e in examples])
    scores = evaluate_predictions([int(e.label) for e in examples], probs)
    folder = model.folder
    title = f"{folder} on {data} ({len(examples)} examples)"
    click.echo(render_report(scores, title))
    if json_path is not None:
        info = {"model": str(folder), "data": data, "format": fmt, "limit": limit or 0}
        write_eval_json(json_path, scores, info)
        _err(f"wrote {json_path}")


# ---------------------------------------------------------------------------------------------
# compare


@click.command("compare")
@click.option(
    "--methods",
    default="lora,prefix,adapter,full",
    show_default=True,
    help="Comma-separated methods to train on the same split.",
)
@data_options
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@hyper_options
@click.option(
    "--in-process",
    is_flag=True,
    help="Train every method in this process (faster to start; memory figures then overlap).",
)
@click.option("--overwrite", is_flag=True, help="Replace earlier results in --out.")
@click.option("--progress/--no-progress", default=True, help="Progress bars on stderr.")
@config_option
@click.pass_context
def compare(ctx: click.Context, **params: Any) -> None:
    """Train several methods on one split; write a table and a bar chart of the trade-offs."""
    settings = _setup(ctx, params["config_path"])
    from training.compare import compare_methods, render_table
    from training.pipeline import DataRequest

    methods = _csv(params["methods"]) or ()
    cfg = training_config(settings, params)
    request = DataRequest(
        data=params["data"],
        fmt=params["fmt"],
        valid=params["valid"],
        test=params["test"],
        limit=params["limit"],
        test_limit=params["test_limit"],
    )
    results = compare_methods(
        cfg,
        request,
        params["out"],
        methods,
        in_process=params["in_process"],
        overwrite=params["overwrite"],
        progress=params["progress"],
        echo=_err,
    )
    click.echo(render_table(results))
    click.echo(f"\nwrote {params['out'] / 'compare.md'}, compare.json and compare.png")


# ---------------------------------------------------------------------------------------------
# export


@click.command("export")
@click.option(
    "--model",
    "model_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--merge", is_flag=True, help="Fold the adapter into the base: a complete model.")
@click.option(
    "--target",
    type=click.Choice(["vllm", "embedded"]),
    default="vllm",
    show_default=True,
    help="Who loads the export: vLLM (LoRA adapters, merged models) or the embedded backend.",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16", "bfloat16"]),
    default="float32",
    show_default=True,
    help="Weight dtype of a merged or full model.",
)
@click.option("--base", help="Override the base model named in the manifest.")
@click.option("--overwrite", is_flag=True, help="Replace an existing export in --out.")
@config_option
@click.pass_context
def export(
    ctx: click.Context,
    model_dir: Path,
    out: Path,
    merge: bool,
    target: str,
    dtype: str,
    base: str | None,
    overwrite: bool,
    config_path: Path | None,
) -> None:
    """Write what the serving layer loads: a PEFT adapter for vLLM, or a merged model."""
    _setup(ctx, config_path)
    from training.export import export_model

    manifest = export_model(
        model_dir,
        out,
        merge=merge,
        target=target,
        dtype=dtype,
        base=base,
        overwrite=overwrite,
        command=_command_line(ctx),
    )
    click.echo(f"exported {manifest.kind} {manifest.family} ({manifest.method}) to {out}")
