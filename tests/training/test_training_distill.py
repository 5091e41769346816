"""`lorabot train --teacher`: an ensemble's answers distilled into one model, as a user runs it."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.manifest import read_manifest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"
# fp32: a tiny run learns or not by its draw (dropout masks, rounding), see conftest.py
RUN = ["--epochs", "6", "--batch-size", "8", "--threads", "1", "--lr", "0.005", "--r", "4",
       "--no-progress", "--precision", "fp32"]  # fmt: skip
ROTATE = {"bearish": "neutral", "neutral": "bullish", "bullish": "bearish", "negative": "neutral",
          "positive": "bearish"}  # fmt: skip


def _train(base: Path, data: Path, out: Path, *extra: str) -> str:
    args = ["train", "--data", str(data), "--base", str(base), "--out", str(out), *RUN, *extra]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def _texts_and_labels(path: Path) -> tuple[list[str], list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r["text"] for r in rows], [r["label"] for r in rows]


@pytest.fixture(scope="module")
def teacher(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "model"
    _train(tiny_bert, FIXTURES / "news_timestamped.csv", out)
    return out


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same texts with every label moved to the next class: labels that contradict the
    teacher wherever the teacher learnt anything."""
    texts, labels = _texts_and_labels(FIXTURES / "news.csv")
    path = tmp_path_factory.mktemp("rotated") / "rotated.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(texts, (ROTATE[label] for label in labels), strict=True))
    return path


def _agreement(a: Path, b: Path, texts: list[str]) -> float:
    from training.classifier import load_model

    left = load_model(a).predict_proba(texts).argmax(axis=1)
    right = load_model(b).predict_proba(texts).argmax(axis=1)
    return float(np.mean(left == right))


def test_a_student_at_full_distill_weight_learns_the_teacher_not_the_labels(
    teacher: Path, rotated: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    texts, _ = _texts_and_labels(rotated)
    plain = tmp_path / "plain"
    _train(tiny_bert, rotated, plain)
    student = tmp_path / "student"
    output = _train(tiny_bert, rotated, student, "--teacher", str(teacher), "--distill-weight", "1")
    assert f"teacher {teacher}" in output and "the 1 teachers' mean" in output
    # the labels say one thing, the teacher another: only the student listened to the teacher
    assert _agreement(student, teacher, texts) > _agreement(plain, teacher, texts) + 0.2


def test_a_distilled_model_records_its_teachers_and_what_they_saw(
    teacher: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    out = tmp_path / "student"
    output = _train(
        tiny_bert, FIXTURES / "news.csv", out, "--teacher", str(teacher), "--teacher",
        str(teacher), "--seed", "7",
    )  # fmt: skip
    # the teacher was split with seed 42: its validation rows may be this run's training rows
    assert f"warning: teacher {teacher} was split with seed 42 (this run: 7)" in output
    manifest = read_manifest(out)
    taught = manifest.data["teachers"]
    assert [t["folder"] for t in taught] == [str(teacher)] * 2
    assert taught[0]["model_id"].startswith("lora:")
    # the teacher learnt from dated rows, the student's own set is undated: both are recorded
    assert manifest.data["span"] == read_manifest(teacher).data["span"]
    assert manifest.data["span_unknown"] == ["news"]
    report = json.loads((out / "eval.json").read_text())
    ensemble = report["teachers"]
    assert ensemble["distill_weight"] == 0.5
    scores = ensemble["sets"]["news"]
    assert scores["n"] == sum(map(sum, scores["confusion_matrix"]))
    assert "teachers" in json.loads((out / "training.json").read_text())
    card = (out / "README.md").read_text()
    assert "## Distilled from an ensemble" in card and "; teaching news): `lorabot train" in card


def test_distill_weight_without_a_teacher_is_refused(tiny_bert: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["train", "--data", str(FIXTURES / "news.csv"), "--base", str(tiny_bert), "--out",
         str(tmp_path / "m"), "--distill-weight", "0.7"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "--distill-weight weighs the teachers' answers: give --teacher" in result.output


def test_a_teacher_limited_to_a_set_teaches_only_that_set(
    teacher: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    _train(tiny_bert, FIXTURES / "news.csv", other, "--seed", "3")
    mix = str(FIXTURES / "mix.toml")

    def distil(out: str, *teachers: str) -> dict:  # type: ignore[type-arg]
        args = ["--data-mix", mix, *(x for t in teachers for x in ("--teacher", t))]
        result = CliRunner().invoke(
            cli,
            ["train", "--base", str(tiny_bert), "--out", str(tmp_path / out), *RUN, *args],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
        return json.loads((tmp_path / out / "eval.json").read_text())["teachers"]

    both = distil("both", f"news={teacher}", str(other))
    alone = distil("alone", str(other))
    assert [m["sets"] for m in both["models"]] == [["news"], ["news", "crypto"]]
    # the crypto rows were taught by the unrestricted teacher alone, the news rows by both
    assert both["sets"]["crypto"] == alone["sets"]["crypto"]
    assert both["sets"]["news"]["calibration"] != alone["sets"]["news"]["calibration"]
    assert both["untaught"] == []
    # a set no teacher names learns from its labels alone, and the ensemble is not scored on it
    crypto_only = distil("crypto_only", f"crypto={other}")
    assert list(crypto_only["sets"]) == ["crypto"] and crypto_only["untaught"] == ["news"]
    card = (tmp_path / "crypto_only" / "README.md").read_text()
    assert "No teacher taught news: its rows learnt from their labels alone." in card


def test_rows_no_teacher_taught_keep_the_whole_hard_loss() -> None:
    import torch

    from training.losses import distilled_loss, soft_loss

    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    hard = torch.tensor([0.3, 1.2])
    soft = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.7, 0.1]])
    loss = distilled_loss(hard, logits, soft, 0.25)
    assert float(loss[0]) == pytest.approx(0.3)  # untaught: not 0.75 x 0.3
    expected = 0.75 * 1.2 + 0.25 * float(soft_loss(logits[1:], soft[1:])[0])
    assert float(loss[1]) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("teachers", "message"),
    [
        (["nope={t}"], "no set named nope (the sets: news, crypto)"),
        (["news=/no/such/folder"], "/no/such/folder is not a folder"),
    ],
)
def test_a_teacher_naming_a_wrong_set_or_folder_is_refused(
    teachers: list[str], message: str, teacher: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    from bot.errors import UserError

    args = [x for t in teachers for x in ("--teacher", t.format(t=teacher))]
    result = CliRunner().invoke(
        cli,
        ["train", "--data-mix", str(FIXTURES / "mix.toml"), "--base", str(tiny_bert), "--out",
         str(tmp_path / "m"), *RUN, *args],
    )  # fmt: skip
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "m" / "lorabot.json").exists()
