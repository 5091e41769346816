"""The model card (README.md) a training run leaves next to its weights: what it is, what it was
trained and scored on, how well it did, and the exact command that made it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.manifest import LABELS, Manifest

_METHOD_NAMES = {
    "lora": "LoRA",
    "qlora": "QLoRA (4-bit NF4 base)",
    "prefix": "prefix-tuning",
    "prompt": "prompt-tuning",
    "adapter": "bottleneck adapter",
    "full": "full fine-tuning",
}


def _scores_table(rows: list[tuple[str, dict[str, Any]]]) -> list[str]:
    lines = [
        "| split | examples | accuracy | macro-F1 | weighted-F1 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, scores in rows:
        lines.append(
            f"| {name} | {scores['n']:,} | {scores['accuracy']:.4f} | {scores['macro_f1']:.4f} "
            f"| {scores['weighted_f1']:.4f} |"
        )
    return lines


def _per_class(scores: dict[str, Any]) -> list[str]:
    lines = ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    for name in LABELS:
        row = scores["per_class"][name]
        lines.append(
            f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} "
            f"| {row['support']:,} |"
        )
    return lines


def _sets_section(
    manifest: Manifest, data: dict[str, Any], sets: dict[str, dict[str, Any]]
) -> list[str]:
    """Per data set: where it came from, its dates, its scores and its calibration."""
    described = {entry["name"]: entry for entry in data.get("sets", [])}
    lines = [
        "## Scores per data set",
        "",
        "| set | scored on | examples | accuracy | macro-F1 | weighted-F1 | ECE before "
        "| ECE after |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scores in sets.items():
        cal = scores["calibration"]
        lines.append(
            f"| {name} | {scores['split']} | {scores['n']:,} | {scores['accuracy']:.4f} "
            f"| {scores['macro_f1']:.4f} | {scores['weighted_f1']:.4f} | {cal['ece_before']:.4f} "
            f"| {cal['ece_after']:.4f} |"
        )
    lines += [
        "",
        f"Calibration temperature {manifest.temperature:g}, fitted on the validation rows of "
        "every set (log-loss); every backend divides the logits by it. ECE: expected "
        "calibration error over 10 confidence bins, before (T = 1) and after; "
        "`reliability.png` draws the bins.",
        "",
    ]
    if described:
        lines += ["Data mix:", ""]
        for name, entry in described.items():
            when = entry.get("span")
            dates = f"{when['start'][:10]} to {when['end'][:10]}" if when else "undated"
            lines.append(
                f"- `{name}`: `{entry['path']}` (format {entry['format']}, weight "
                f"{entry['weight']:g}), {entry['n_train']:,} train / {entry['n_valid']:,} "
                f"validation ({entry['valid']}) / {entry['n_test']:,} test"
                + (f" ({entry['test']})" if entry["n_test"] else "")
                + f"; training span {dates}"
            )
        lines.append("")
    span = data.get("span")
    lines.append(
        f"Training span (what a backtest checks for overlap): {span['start']} to {span['end']}"
        if span
        else "Training span: unknown (the data has no dates)"
    )
    if data.get("span_unknown") and span:
        lines[-1] += f"; no dates for {', '.join(data['span_unknown'])}"
    return [*lines, ""]


def _teachers_section(teachers: dict[str, Any]) -> list[str]:
    """What the distilled model learnt from, and how the ensemble it copies scored."""
    lines = [
        "## Distilled from an ensemble",
        "",
        f"The loss puts {teachers['distill_weight']:g} of its weight on the mean calibrated "
        "answers of these models, the rest on the labels:",
        "",
    ]
    for model in teachers["models"]:
        command = model.get("command") or "command not recorded"
        lines.append(
            f"- `{model['folder']}` ({model.get('model_id', '')}, temperature "
            f"{model.get('temperature', 1.0):g}; teaching {', '.join(model.get('sets', []))}): "
            f"`{command}`"
        )
    if teachers.get("untaught"):
        lines += ["", f"No teacher taught {', '.join(teachers['untaught'])}: its rows learnt "
                  "from their labels alone."]  # fmt: skip
    lines += [
        "",
        "The ensemble itself (one forward pass per model), on the same rows:",
        "",
        "| set | scored on | examples | accuracy | macro-F1 | weighted-F1 | validation accuracy "
        "| validation macro-F1 |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, scores in teachers["sets"].items():
        valid = scores["valid"]
        lines.append(
            f"| {name} | {scores['split']} | {scores['n']:,} | {scores['accuracy']:.4f} "
            f"| {scores['macro_f1']:.4f} | {scores['weighted_f1']:.4f} | {valid['accuracy']:.4f} "
            f"| {valid['macro_f1']:.4f} |"
        )
    return [*lines, ""]


def _mix_check(sets: list[dict[str, Any]]) -> str:
    """`lorabot eval` on each set's own test file, where one is a file `--data` can read (a
    known format; a CSV with its own columns needs the mix file instead)."""
    parts = [
        f" --data {entry['test']} --format {entry.get('format', 'auto')}"
        for entry in sets
        if entry.get("test") and entry.get("format") not in (None, "columns", "mix")
    ]
    return "lorabot eval --model FOLDER" + "".join(parts) if parts else ""


def render_card(
    manifest: Manifest,
    report: dict[str, Any],
    valid: dict[str, Any],
    test: dict[str, Any] | None,
    sets: dict[str, dict[str, Any]] | None = None,
) -> str:
    data = report.get("data", {})
    settings = report.get("settings", {})
    method = _METHOD_NAMES.get(manifest.method, manifest.method)
    trainable = manifest.trainable_params or 0
    total = manifest.total_params or 1
    check = ""
    if test is not None and data.get("format") == "mix":
        check = _mix_check(data.get("sets", []))
    elif test is not None and data.get("test"):
        source = str(data["test"]).removesuffix(" (its held-out split)")
        fmt = data.get("format", "auto")
        check = f"lorabot eval --model FOLDER --data {source}" + (
            f" --format {fmt}" if fmt != "auto" else ""
        )
    kind = "An encoder classifier" if manifest.family == "encoder" else "A decoder LLM"
    lines = [
        f"# {method} sentiment model over `{manifest.base_model}`",
        "",
        f"{kind} that reads financial news and answers bearish / neutral / bullish "
        "with calibrated probabilities (label order bearish=0, neutral=1, bullish=2). "
        "Made with `lorabot train`; load it with `training.classifier.load_model(folder)` or serve "
        "it with the embedded backend.",
        "",
        "## Command",
        "",
        "Made by (run from the project root; the data paths are as given then):",
        "",
        "```",
        manifest.command or "(not recorded)",
        "```",
        "",
        *(
            [
                "Check its test scores again (FOLDER is this folder):",
                "",
                "```",
                check,
                "```",
                "",
            ]
            if check
            else []
        ),
        "## Data and split",
        "",
        f"- training data: `{data.get('train', '')}` (format `{data.get('format', 'auto')}`), "
        f"{data.get('n_train', 0):,} examples after the split "
        f"(bearish/neutral/bullish: {', '.join(str(c) for c in data.get('train_counts', []))})",
        f"- validation (early stopping, best-weights selection): {data.get('valid', '')}, "
        f"{data.get('n_valid', 0):,} examples",
    ]
    if test is not None:
        lines.append(
            f"- test (never seen in training or selection): `{data.get('test', '')}`, "
            f"{data.get('n_test', 0):,} examples"
        )
    if data.get("dropped_overlap"):
        dropped = data["dropped_overlap"]
        lines.append(
            f"- dropped {dropped} training row{'s' if dropped != 1 else ''} also present in the "
            "held-out data"
        )
    lines += [
        "",
        "## Scores",
        "",
        *_scores_table([("validation", valid), *([("test", test)] if test else [])]),
        "",
        f"Per class on the {'test' if test else 'validation'} split:",
        "",
        *_per_class(test or valid),
        "",
        *(_sets_section(manifest, data, sets) if sets else []),
        *(_teachers_section(report["teachers"]) if report.get("teachers") else []),
        "## Training",
        "",
        f"- method: {method}; settings: `{json.dumps(manifest.method_config)}`",
        f"- trainable parameters: {trainable:,} of {total:,} ({100 * trainable / total:.2f}%)",
        f"- max length {manifest.max_length}, batch {settings.get('batch_size')}"
        f" x {settings.get('grad_accum')} accumulation, "
        f"learning rate {report.get('learning_rate')},"
        f" {settings.get('scheduler')} decay after {settings.get('warmup_ratio')} warm-up, "
        f"weight decay {settings.get('weight_decay')}, class weights "
        f"{settings.get('class_weights')}, seed {settings.get('seed')}",
        f"- {report.get('epochs_done')} epochs ({report.get('steps')} steps) in "
        f"{report.get('train_seconds')} s ({report.get('seconds_per_epoch')} s/epoch); "
        f"weights kept from step {report.get('best_step')} (best validation "
        f"{settings.get('keep_best', 'loss')})"
        + ("; stopped early" if report.get("stopped_early") else ""),
        "",
    ]
    if manifest.family == "decoder":
        lines += [
            "## Prompt",
            "",
            f"Label words {list(manifest.label_words or ())} (token ids "
            f"{list(manifest.label_token_ids or ())}) after:",
            "",
            "```",
            manifest.prompt or "",
            "```",
            "",
        ]
    return "\n".join(lines)


def write_card(
    folder: Path,
    manifest: Manifest,
    report: dict[str, Any],
    valid: dict[str, Any],
    test: dict[str, Any] | None,
    sets: dict[str, dict[str, Any]] | None = None,
) -> Path:
    path = folder / "README.md"
    path.write_text(render_card(manifest, report, valid, test, sets), encoding="utf-8")
    return path
