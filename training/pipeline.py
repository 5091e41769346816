"""One training run from data to a finished model folder: what `lorabot train` does, and what
`compare` runs once per method.

The folder it writes is complete and self-describing: the method's weights (a PEFT adapter, a
lorabot adapter, or a whole model), `lorabot.json` (the manifest the serving layer reads),
`eval.json` (validation and, when given, test scores), `training.json` (settings, history, timing)
and a model card `README.md`. Checkpoints live in `checkpoints/` while it trains and are removed
when it finishes, unless asked to keep them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import TrainingConfig
from bot.errors import UserError
from bot.events import iso
from bot.log import get_logger
from bot.manifest import LABELS, MANIFEST_NAME, Manifest, write_manifest
from training.data import (
    Example,
    ReadOptions,
    known_test_split,
    label_counts,
    load_examples,
    sample,
)
from training.metrics import predicted_labels
from training.mix import DataSet, set_name
from training.per_set import sets_summary, write_eval_json
from training.splits import Split, make_split

if TYPE_CHECKING:
    from training.base_model import Base
    from training.classifier import SentimentClassifier
    from training.families import PromptSpec

log = get_logger(__name__)

# Files a run writes into its folder (removed by --overwrite; nothing else is touched).
ARTIFACTS = (
    MANIFEST_NAME,
    "eval.json",
    "training.json",
    "README.md",
    "adapter_config.json",
    "adapter_model.safetensors",
    "lorabot_adapter.json",
    "lorabot_adapter.safetensors",
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "chat_template.jinja",
    "checkpoints",
    "run.json",
    "reliability.png",
)


@dataclass(frozen=True)
class DataRequest:
    """Where the examples come from. `valid`/`test` are optional files (or known names)."""

    data: str
    fmt: str = "auto"
    valid: str | None = None
    test: str | None = None
    limit: int | None = None
    test_limit: int | None = None
    sets: tuple[DataSet, ...] = ()  # several named sets (`--data` repeated, `--data-mix`)

    @property
    def name(self) -> str:
        """What a single set is called in per-set tables."""
        return set_name(self.data)


@dataclass
class TrainOutcome:
    out: Path
    manifest: Manifest
    trainable: int
    total: int
    weights_bytes: int
    seconds: float
    seconds_per_epoch: float
    epochs_done: float
    stopped_early: bool
    valid: dict[str, Any]
    test: dict[str, Any] | None
    classifier: SentimentClassifier  # the trained model, in memory
    sets: dict[str, dict[str, Any]]  # per named set: scores (test, else valid) and calibration
    temperature: float = 1.0


@dataclass
class Trainable:
    """A base with a method applied, ready for the loop."""

    base: Base
    model: Any
    prompt: PromptSpec | None
    settings: dict[str, Any]


def build_trainable(cfg: TrainingConfig) -> Trainable:
    """Seed, load the base (4-bit for QLoRA), check the decoder's label words, apply the method.

    The same settings always give the same initial model: that is what makes a run reproducible
    and a checkpoint resumable."""
    import torch
    from transformers import set_seed

    from training.base_model import load_base
    from training.families import prompt_spec
    from training.methods import Context, get_method, settings_to_dict

    method = get_method(cfg.method)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    set_seed(cfg.seed)
    base = load_base(cfg.base, cfg.family, quantize=method.quantized)
    prompt = None
    if base.family == "decoder":
        prompt = prompt_spec(base.tokenizer, cfg.prompt, cfg.label_words)
    settings = method.from_config(cfg)
    model = method.apply(base.model, Context(base.family, base.model_type), settings)
    return Trainable(base, model, prompt, settings_to_dict(settings))


def read_options(cfg: TrainingConfig) -> ReadOptions:
    return ReadOptions(
        fiqa_bearish_below=cfg.fiqa_bearish_below,
        fiqa_bullish_above=cfg.fiqa_bullish_above,
        phrasebank_agreement=cfg.phrasebank_agreement,
    )


def prepare_split(request: DataRequest, cfg: TrainingConfig) -> tuple[Split, dict[str, Any]]:
    """Read the data and split it; the second value describes it for the manifest and card."""
    options = read_options(cfg)
    if request.sets:
        from training.set_split import split_sets

        return split_sets(
            request.sets,
            options,
            valid_fraction=cfg.valid_fraction,
            seed=cfg.seed,
            limit=request.limit,
            test_limit=request.test_limit,
        )
    train = sample(load_examples(request.data, request.fmt, options), request.limit, cfg.seed)
    valid = load_examples(request.valid, request.fmt, options) if request.valid else None
    test: list[Example] | None = None
    test_source = request.test
    if request.test:
        test = load_examples(request.test, request.fmt, options, split="test")
    elif known_test_split(request.data):
        test = load_examples(request.data, request.fmt, options, split="test")
        test_source = f"{request.data} (its held-out split)"
    if test is not None:
        test = sample(test, request.test_limit, cfg.seed)
    split = make_split(
        train, valid=valid, test=test, valid_fraction=cfg.valid_fraction, seed=cfg.seed
    )
    info = describe_split(split, request, test_source)
    return split, info


def describe_split(split: Split, request: DataRequest, test_source: str | None) -> dict[str, Any]:
    from training.mix import span

    info: dict[str, Any] = {
        "train": request.data,
        "format": request.fmt,
        "valid": request.valid or f"{_fraction(split)} of the training data ({split.strategy})",
        "test": test_source or "",
        "limit": request.limit or 0,
        "n_train": len(split.train),
        "n_valid": len(split.valid),
        "n_test": len(split.test),
        "train_counts": list(label_counts(split.train)),
        "dropped_overlap": split.dropped_overlap,
        "split": split.strategy,
    }
    # what the model saw (training and selection); a backtest over it is flagged as overlapping
    seen = span([*split.train, *split.valid])
    if seen:
        info["span"] = seen
    else:
        info["span_unknown"] = [request.name]
    return info


def _fraction(split: Split) -> str:
    total = len(split.train) + len(split.valid)
    return f"{len(split.valid) / total:.0%}" if total else "0%"


def prepare_out(out: Path, *, resume: bool, overwrite: bool) -> None:
    """Refuse to clobber a finished model or an unfinished run unless asked to."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: exists and is not a folder")
    if overwrite:
        for name in ARTIFACTS:
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    elif not resume:
        if (out / MANIFEST_NAME).exists():
            raise UserError(f"{out}: already holds a trained model; pass --overwrite to replace it")
        if (out / "checkpoints").exists():
            raise UserError(
                f"{out}: holds checkpoints of an unfinished run; pass --resume to continue it "
                "or --overwrite to start again"
            )
    out.mkdir(parents=True, exist_ok=True)


def train_model(
    cfg: TrainingConfig,
    request: DataRequest,
    out: Path,
    *,
    resume: bool | Path = False,
    overwrite: bool = False,
    keep_checkpoints: bool = False,
    progress: bool = True,
    command: str = "",
    split: tuple[Split, dict[str, Any]] | None = None,
    echo: Callable[[str], None] | None = None,
    calibrate: bool = True,
    init_from: Path | None = None,
    teachers: Sequence[str] = (),
) -> TrainOutcome:
    from training.base_model import count_parameters, memory_footprint
    from training.classifier import SentimentClassifier
    from training.families import encode_texts
    from training.loop_state import fingerprint
    from training.methods import get_method
    from training.trainer import Encoded, Trainer, evaluate_rows

    say = echo or (lambda message: log.info(message))
    warn = echo or (lambda message: log.warning(message))
    method = get_method(cfg.method)
    prepare_out(out, resume=bool(resume), overwrite=overwrite)
    the_split, info = split or prepare_split(request, cfg)
    _warn_missing_classes(the_split.train, warn)
    started = time.perf_counter()
    teaching = None
    if teachers:
        from training.distill import prepare_teaching

        teaching, info = prepare_teaching(teachers, the_split, request.name, info, cfg, say, warn)

    built = build_trainable(cfg)
    base, model, prompt = built.base, built.model, built.prompt
    if init_from is not None:
        from training.distill import widen_spans
        from training.warm_start import warm_start

        info = dict(info)
        seeded = warm_start(model, cfg.method, init_from)
        widen_spans(info, seeded)
        info["init_from"] = seeded
        say(f"starting from the weights of {init_from}")
    resolved = _resolved_settings(model, built.settings)
    trainable, total = count_parameters(model)
    say(
        f"{cfg.method} on {base.reference} ({base.family}): trainable parameters "
        f"{trainable:,} of {total:,} ({100 * trainable / total:.2f}%)"
    )
    learning_rate = cfg.learning_rate or method.default_lr(base.family)
    template = prompt.template if prompt else None

    def encode(texts: list[str]) -> list[list[int]]:
        return encode_texts(base.tokenizer, texts, base.family, cfg.max_length, template)

    train_rows = Encoded.of(the_split.train, encode)
    valid_rows = Encoded.of(the_split.valid, encode)
    token_ids = prompt.token_ids if prompt else None
    pad_id = int(base.tokenizer.pad_token_id or 0)
    identity = {
        "method": cfg.method,
        "base": base.reference,
        "family": base.family,
        "weights": [(part.name, part.weight) for part in the_split.sets],
        "init_from": str(init_from or ""),
    }
    if teaching is not None:
        identity["teachers"] = [source["model_id"] for source in teaching.sources]
    trainer = Trainer(
        model,
        cfg,
        base.family,
        the_split,
        train_rows,
        valid_rows,
        pad_id=pad_id,
        token_ids=token_ids,
        learning_rate=learning_rate,
        out=out,
        fingerprint=fingerprint(cfg, identity, the_split),
        progress=progress,
        soft_targets=teaching.train if teaching else None,
    )
    if resume:
        found = trainer.resume(resume if isinstance(resume, Path) else None)
        if not found:
            say(f"no checkpoint in {out / 'checkpoints'}: starting from the beginning")
    say(
        f"training on {len(the_split.train):,} examples, validating on {len(the_split.valid):,} "
        f"({trainer.steps_per_epoch} steps/epoch, {trainer.total_steps} steps, "
        f"lr {learning_rate:g})"
    )
    loop = trainer.run()
    _warn_single_class(loop.valid_scores, warn)

    from training.calibration import fit_temperature
    from training.metrics import evaluate_predictions
    from training.per_set import per_set_scores

    valid_raw = trainer.final_valid_probs
    temperature = fit_temperature(valid_rows.labels, valid_raw) if calibrate else 1.0
    test_scores = None
    test_raw = None
    if the_split.test:
        from training.calibration import temper

        test_rows = Encoded.of(the_split.test, encode)
        loss, test_raw = evaluate_rows(
            model, test_rows, base.family, token_ids, pad_id, cfg.eval_batch_size
        )
        test_scores = evaluate_predictions(test_rows.labels, temper(test_raw, temperature), loss)
    sets = per_set_scores(the_split, request.name, valid_raw, test_raw, temperature)
    if len(sets) > 1 or calibrate:
        say(sets_summary(sets, temperature))

    from training.saving import save_trained

    manifest = Manifest(
        family=base.family,
        method=cfg.method,
        kind="full" if method.storage(base.family) == "full" else "adapter",
        base_model=base.reference,
        label_words=prompt.words if prompt else None,
        prompt=prompt.template if prompt else None,
        label_token_ids=prompt.token_ids if prompt else None,
        max_length=cfg.max_length,
        dtype="float32",
        quantization="nf4" if method.quantized else None,
        eval=_flat_eval(loop.valid_scores, test_scores, info),
        trainable_params=trainable,
        total_params=total,
        created=iso(datetime.now(UTC)),
        command=command,
        method_config=resolved,
        data={k: v for k, v in info.items() if k != "train_counts"},
        temperature=temperature,
    )
    save_trained(model, base, manifest, out)
    write_manifest(out, manifest)
    seconds = time.perf_counter() - started
    report = {
        "settings": cfg.model_dump(mode="json"),
        "precision": trainer.precision,  # what `precision` resolved to on this CPU
        "learning_rate": learning_rate,
        "class_weights": trainer.class_weights,
        "data": info,
        "steps": loop.state.step,
        "steps_per_epoch": loop.steps_per_epoch,
        "epochs_done": round(loop.epochs_done, 4),
        "best_step": loop.state.best_step,
        "stopped_early": loop.state.stopped_early,
        "train_seconds": round(loop.state.train_seconds, 2),
        "seconds_per_epoch": round(loop.seconds_per_epoch, 2),
        "wall_seconds": round(seconds, 2),
        "history": loop.state.history,
    }
    teachers_report = None
    if teaching is not None:
        from training.distill import score_teachers

        teachers_report = score_teachers(teaching, the_split, request.name, cfg, say)
        report["teachers"] = teachers_report
    (out / "training.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_eval_json(
        out / "eval.json",
        test_scores or loop.valid_scores,
        info,
        loop.valid_scores,
        sets=sets,
        temperature=temperature,
        teachers=teachers_report,
    )
    from training.calibration import reliability_chart
    from training.card import write_card

    reliability_chart(
        out / "reliability.png",
        {name: entry["calibration"] for name, entry in sets.items()},
        temperature,
    )
    write_card(out, manifest, report, loop.valid_scores, test_scores, sets)
    if not keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return TrainOutcome(
        out=out,
        manifest=manifest,
        trainable=trainable,
        total=total,
        weights_bytes=memory_footprint(model),
        seconds=loop.state.train_seconds,
        seconds_per_epoch=loop.seconds_per_epoch,
        epochs_done=loop.epochs_done,
        stopped_early=loop.state.stopped_early,
        valid=loop.valid_scores,
        test=test_scores,
        sets=sets,
        temperature=temperature,
        classifier=SentimentClassifier(
            model=model,
            tokenizer=base.tokenizer,
            family=base.family,
            max_length=cfg.max_length,
            prompt=prompt,
            manifest=manifest,
            batch_size=cfg.eval_batch_size,
        ),
    )


def _warn_missing_classes(train: Sequence[Example], warn: Callable[[str], None]) -> None:
    counts = label_counts(train)
    missing = [name for name, count in zip(LABELS, counts, strict=True) if not count]
    if missing:
        shown = ", ".join(f"{name} {count}" for name, count in zip(LABELS, counts, strict=True))
        warn(
            f"warning: the training data has no {' and no '.join(missing)} example ({shown}): "
            "the model cannot learn to predict what it never sees"
        )


def _warn_single_class(valid: dict[str, Any], warn: Callable[[str], None]) -> None:
    predicted = predicted_labels(valid)
    if len(predicted) == 1:
        warn(
            f"warning: the trained model predicts only {predicted[0]} on validation "
            f"({valid['n']} examples): it has learnt no signal; `lorabot export` refuses it "
            "without --force"
        )


def _resolved_settings(model: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings as applied (e.g. LoRA's target modules after defaults were filled in)."""
    resolved = dict(settings)
    peft_config = getattr(model, "peft_config", None)
    if isinstance(peft_config, dict) and "default" in peft_config:
        targets = getattr(peft_config["default"], "target_modules", None)
        if targets:
            resolved["targets"] = sorted(targets)
    if hasattr(model, "settings") and callable(model.settings):
        resolved.update(model.settings())
    return resolved


def _flat_eval(
    valid: dict[str, Any], test: dict[str, Any] | None, info: dict[str, Any]
) -> dict[str, float | int | str]:
    main = test or valid
    flat: dict[str, float | int | str] = {
        "split": "test" if test else "valid",
        "data": str(info.get("test") or info.get("valid") or ""),
        "accuracy": round(float(main["accuracy"]), 5),
        "macro_f1": round(float(main["macro_f1"]), 5),
        "weighted_f1": round(float(main["weighted_f1"]), 5),
        "n": int(main["n"]),
        "valid_accuracy": round(float(valid["accuracy"]), 5),
        "valid_macro_f1": round(float(valid["macro_f1"]), 5),
        # what `lorabot export` checks before it ships a model that answers one class only
        "valid_predicted": ",".join(predicted_labels(valid)),
    }
    if "loss" in valid:
        flat["valid_loss"] = round(float(valid["loss"]), 5)
    return flat
