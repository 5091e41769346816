"""The commands as a user runs them: results on stdout, one-line errors, nothing heavy on import."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.config import TrainingConfig
from bot.errors import UserError
from bot.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "training"


def _lorabot(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_training_modules_import_without_torch() -> None:
    code = (
        "import sys, bot.commands.train, bot.commands.classify, bot.commands.serve, "
        "training.classifier, training.data, training.splits, training.families, "
        "training.pipeline; "
        "heavy = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_domain_packages_hold_no_click_shell() -> None:
    """Every command's click shell is in bot/commands/; training and serving are plain functions."""
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("training", "adapters/model")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if any(
            line.strip().startswith(("import click", "from click"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []


@pytest.mark.slow
def test_train_then_eval_from_the_command_line(tiny_bert: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    args = [
        "train",
        "--data",
        str(FIXTURES / "news.csv"),
        "--base",
        str(tiny_bert),
        "--out",
        str(out),
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--threads",
        "1",
        "--no-progress",
    ]
    done = _lorabot(*args)
    assert done.returncode == 0, done.stderr
    assert "trainable parameters" in done.stderr  # said before training starts
    lines = done.stdout.splitlines()
    assert lines[0] == f"model: {out}"
    assert "trainable parameters: " in lines[1] and "%)" in lines[1]
    assert lines[3].startswith("validation: accuracy ")
    manifest = read_manifest(out)
    assert manifest.command.startswith("lorabot train --data ")
    assert "README.md" in {p.name for p in out.iterdir()}

    again = CliRunner().invoke(cli, args)
    assert isinstance(again.exception, UserError)
    assert str(again.exception) == (
        f"{out}: already holds a trained model; pass --overwrite to replace it"
    )

    report = tmp_path / "eval.json"
    done = _lorabot(
        "eval", "--model", str(out), "--data", str(FIXTURES / "news.csv"), "--json", str(report)
    )
    assert done.returncode == 0, done.stderr
    assert "confusion matrix" in done.stdout and "bearish" in done.stdout
    scores = json.loads(report.read_text())
    for key in ("accuracy", "macro_f1", "weighted_f1"):
        assert 0.0 <= scores[key] <= 1.0
    assert scores["n"] == 47
    assert sum(map(sum, scores["confusion_matrix"])) == 47


def test_bad_data_is_one_line_naming_file_and_line(tiny_bert: Path, tmp_path: Path) -> None:
    done = _lorabot(
        "train",
        "--data",
        str(FIXTURES / "bad_label.csv"),
        "--base",
        str(tiny_bert),
        "--out",
        str(tmp_path / "m"),
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"lorabot: error: {FIXTURES / 'bad_label.csv'}:3: unknown label 'maybe': use "
        "bearish/neutral/bullish (or negative/neutral/positive)"
    ]
    assert not (tmp_path / "m" / "lorabot.json").exists()


def test_settings_come_from_config_and_flags(
    tiny_bert: Path, tmp_path: Path, news_csv: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[training]\nmethod = "adapter"\nbase = "{tiny_bert}"\nepochs = 1\nbatch_size = 8\n'
        "adapter_size = 4\nnum_threads = 1\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = tmp_path / "m"
    result = runner.invoke(
        cli,
        [
            "train",
            "--config",
            str(config),
            "--data",
            str(news_csv),
            "--out",
            str(out),
            "--adapter-size",
            "6",
            "--no-progress",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert manifest.method == "adapter"
    assert manifest.method_config["size"] == 6  # the flag beats the file
    settings = json.loads((out / "training.json").read_text())["settings"]
    assert settings["batch_size"] == 8 and settings["epochs"] == 1

    bad = runner.invoke(
        cli,
        [
            "train",
            "--config",
            str(config),
            "--data",
            str(news_csv),
            "--out",
            str(out),
            "--overwrite",
            "--warmup",
            "2",
        ],
    )
    assert isinstance(bad.exception, UserError)
    assert "bad training settings: warmup_ratio" in str(bad.exception)


def test_decoder_label_words_must_be_single_tokens(
    tiny_llama: Path, news_csv: Path, tmp_path: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            "train",
            "--base",
            str(tiny_llama),
            "--data",
            str(news_csv),
            "--out",
            str(tmp_path / "m"),
            "--label-words",
            "bearishness,neutral,bullish",
            "--no-progress",
        ],
    )
    assert isinstance(result.exception, UserError)
    assert "'bearishness' (bearish) is not a single token" in str(result.exception)
    assert "--label-words" in str(result.exception)


@pytest.mark.slow
def test_eval_without_model_uses_the_shipped_default(tmp_path: Path) -> None:
    report = tmp_path / "eval.json"
    done = _lorabot("eval", "--data", str(FIXTURES / "news.csv"), "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert "adapters/model/weights/default" in done.stdout.splitlines()[0]
    scores = json.loads(report.read_text())
    # Clear-cut headlines; the shipped model must read them right.
    assert scores["accuracy"] >= 0.8


def test_eval_reads_fiqa_with_thresholds_from_flags(tmp_path: Path) -> None:
    """The shipped model on FiQA headlines: the flags move examples between classes."""
    runner = CliRunner()
    supports = []
    for low, high in (("-0.1", "0.1"), ("-0.3", "0.5")):
        report = tmp_path / f"fiqa{low}.json"
        result = runner.invoke(
            cli,
            [
                "eval",
                "--data",
                str(FIXTURES / "fiqa_headlines.json"),
                "--json",
                str(report),
                "--fiqa-bearish-below",
                low,
                "--fiqa-bullish-above",
                high,
            ],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        per_class = json.loads(report.read_text())["per_class"]
        supports.append([per_class[k]["support"] for k in ("bearish", "neutral", "bullish")])
    assert supports == [[2, 1, 1], [1, 3, 0]]
