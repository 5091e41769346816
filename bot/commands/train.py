"""`lorabot train`, `eval`, `compare` and `export`: click shells over the training toolkit.

stdout carries only results (scores, tables, paths); progress bars and logs go to stderr. torch
and transformers are imported inside the commands, so `lorabot --help` stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from bot.cli import config_option
from bot.commands.paths import writable_file, writable_folder
from bot.commands.train_impact import impact_options, run_impact
from bot.commands.training_options import (
    METHOD_CHOICE,
    chosen_sets,
    command_line,
    csv_values,
    data_options,
    data_request,
    echo_err,
    hyper_options,
    reading_options,
    set_options,
    setup_command,
    training_config,
)

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
@click.option(
    "--init-from",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Start from this trained adapter's weights (same method and rank), e.g. the default.",
)
@click.option(
    "--teacher",
    "teachers",
    multiple=True,
    help="Distil this trained model's answers into the new one (repeat it for an ensemble: "
    "their mean is the soft target); SET[,SET]=FOLDER teaches those sets only.",
)
@click.option(
    "--distill-weight",
    type=float,
    help="With --teacher: the loss's share on the teachers' answers (default 0.5).",
)
@click.option(
    "--calibrate/--no-calibrate",
    default=True,
    help="Fit a temperature on the validation rows after training (default: on).",
)
@impact_options
@config_option
@click.pass_context
def train(ctx: click.Context, **params: Any) -> None:
    """Fine-tune a sentiment model (LoRA, QLoRA, prefix, prompt, adapter or full).

    Example: lorabot train --data news.csv --out runs/lora
    (CSV with a header text,label and bearish/neutral/bullish labels). Several sets:
    --data a.csv --data b.csv, or --data-mix mix.toml; each is split and scored on its own.
    Impact models: lorabot train --task impact --news NEWS --bars BARS --horizon 4h --out OUT
    """
    settings = setup_command(ctx, params["config_path"])
    if params["distill_weight"] is not None and not params["teachers"]:
        raise click.UsageError("--distill-weight weighs the teachers' answers: give --teacher")
    if params["task"] == "impact":
        if params["teachers"]:
            raise click.UsageError("--teacher distils sentiment models: not with --task impact")
        writable_folder(params["out"], "--out")
        fixed = {"method": params["method"]} if params["method"] else {}
        cfg = training_config(settings, params, **fixed)
        return run_impact(settings, cfg, params, command_line(ctx), echo_err)
    from training.metrics import headline
    from training.pipeline import train_model

    writable_folder(params["out"], "--out")
    fixed = {"method": params["method"]} if params["method"] else {}
    cfg = training_config(settings, params, **fixed)
    request = data_request(params)
    resume: bool | Path = params["resume_from"] or bool(params["resume"])
    outcome = train_model(
        cfg,
        request,
        params["out"],
        resume=resume,
        overwrite=params["overwrite"],
        keep_checkpoints=params["keep_checkpoints"],
        progress=params["progress"],
        command=command_line(ctx),
        echo=echo_err,
        calibrate=params["calibrate"],
        init_from=params["init_from"],
        teachers=params["teachers"],
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
    if len(outcome.sets) > 1:
        from training.per_set import render_sets_table

        click.echo(render_sets_table(outcome.sets))
    click.echo(f"calibration temperature: {outcome.temperature:g}")


# ---------------------------------------------------------------------------------------------
# eval


@click.command("eval")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Model folder, or a shipped model's name (default: the shipped default adapter).",
)
@click.option("--base", help="Override the base model named in the model's manifest.")
@set_options
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--limit", type=int, help="Score a seeded random N examples of each set.")
@click.option("--batch-size", type=int, default=None, help="Texts per forward pass.")
@click.option("--threads", type=int, default=None, help="torch CPU threads (0: default).")
@reading_options
@config_option
@click.pass_context
def eval_command(
    ctx: click.Context,
    model_dir: Path | None,
    base: str | None,
    json_path: Path | None,
    limit: int | None,
    batch_size: int | None,
    threads: int | None,
    config_path: Path | None,
    **params: Any,
) -> None:
    """Score a model on one or several sets: accuracy, macro/weighted F1, calibration (ECE).

    Each set is scored on its test rows (a known set's held-out split, a mix set's `test` or
    `test_from`), else on all its rows. One set: the full report; several: one table.
    """
    settings = setup_command(ctx, config_path)
    if json_path is not None:
        writable_file(json_path, "--json")
    from training.classifier import load_model
    from training.metrics import render_report
    from training.per_set import evaluate_sets, render_sets_table
    from training.pipeline import read_options, write_eval_json

    cfg = training_config(settings, params)
    sets = chosen_sets(params)
    model = load_model(
        model_dir,
        base=base,
        num_threads=threads if threads is not None else cfg.num_threads,
        batch_size=batch_size or cfg.eval_batch_size,
    )
    scored = evaluate_sets(model, sets, read_options(cfg), limit=limit, seed=cfg.seed)
    folder = model.folder
    if len(scored) == 1:
        scores = next(iter(scored.values()))
        calibration = scores["calibration"]
        click.echo(render_report(scores, f"{folder} on {sets[0].path} ({scores['n']} examples)"))
        click.echo(
            f"\ncalibration: temperature {model.temperature:g}, ECE "
            f"{calibration['ece_after']:.4f} (uncalibrated {calibration['ece_before']:.4f})"
        )
    else:
        click.echo(f"{folder} (temperature {model.temperature:g})")
        click.echo(render_sets_table(scored))
    if json_path is not None:
        info = {
            "model": str(folder),
            "data": [item.path for item in sets] if len(sets) > 1 else sets[0].path,
            "format": [item.fmt for item in sets] if len(sets) > 1 else sets[0].fmt,
            "limit": limit or 0,
        }
        # one set: today's top-level keys; several: only under `sets`
        top = next(iter(scored.values())) if len(scored) == 1 else {"model": str(folder)}
        write_eval_json(json_path, top, info, sets=scored, temperature=model.temperature)
        echo_err(f"wrote {json_path}")


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
    settings = setup_command(ctx, params["config_path"])
    from training.compare import compare_methods, render_table

    writable_folder(params["out"], "--out")
    methods = csv_values(params["methods"]) or ()
    cfg = training_config(settings, params)
    request = data_request(params)
    results = compare_methods(
        cfg,
        request,
        params["out"],
        methods,
        in_process=params["in_process"],
        overwrite=params["overwrite"],
        progress=params["progress"],
        echo=echo_err,
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
@click.option(
    "--force", is_flag=True, help="Export even a model that predicted one class on validation."
)
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
    force: bool,
    config_path: Path | None,
) -> None:
    """Write what the serving layer loads: a PEFT adapter for vLLM, or a merged model.

    For vLLM an encoder adapter is merged (vLLM serves encoders as complete models only).
    """
    setup_command(ctx, config_path)
    writable_folder(out, "--out")
    from training.export import export_model

    manifest = export_model(
        model_dir,
        out,
        merge=merge,
        target=target,
        dtype=dtype,
        base=base,
        overwrite=overwrite,
        force=force,
        command=command_line(ctx),
        echo=echo_err,
    )
    click.echo(f"exported {manifest.kind} {manifest.family} ({manifest.method}) to {out}")
