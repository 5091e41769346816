"""`lorabot train` and `lorabot eval` on several named sets, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from bot.errors import UserError
from bot.manifest import read_manifest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"
TINY = ["--epochs", "2", "--batch-size", "8", "--threads", "1", "--lr", "0.005", "--r", "4"]


@pytest.fixture(scope="module")
def mixed_model(tiny_bert: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("mixed") / "model"
    result = CliRunner().invoke(
        cli,
        ["train", "--data-mix", str(FIXTURES / "mix.toml"), "--base", str(tiny_bert),
         "--out", str(out), "--no-progress", *TINY],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output


def test_training_on_a_mix_scores_and_describes_each_set(mixed_model: tuple[Path, str]) -> None:
    out, output = mixed_model
    manifest = read_manifest(out)
    assert manifest.data["span"]["start"].startswith("2021-01-")
    assert manifest.data["span"]["end"] < "2021-07-01"  # the test months were never seen
    assert manifest.data["span_unknown"] == ["news"]
    assert [s["name"] for s in manifest.data["sets"]] == ["news", "crypto"]
    assert manifest.temperature > 0
    report = json.loads((out / "eval.json").read_text())
    assert set(report["sets"]) == {"news", "crypto"}
    assert report["sets"]["crypto"]["split"] == "test"  # test_from gave it test rows
    assert report["sets"]["news"]["split"] == "valid"
    crypto = report["sets"]["crypto"]
    assert crypto["n"] == sum(map(sum, crypto["confusion_matrix"]))
    assert {"ece_before", "ece_after", "bins_before", "bins_after"} <= set(crypto["calibration"])
    assert report["temperature"] == manifest.temperature
    # the temperature was fitted to lower the pooled validation log-loss
    pooled = [report["sets"][n]["valid"]["calibration"] for n in ("news", "crypto")]
    before = sum(c["log_loss_before"] * c["n"] for c in pooled)
    after = sum(c["log_loss_after"] * c["n"] for c in pooled)
    assert after <= before + 1e-6
    card = (out / "README.md").read_text()
    assert "## Scores per data set" in card and "| crypto | test |" in card
    assert "training span 2021-01-" in card
    assert "--format mix" not in card  # not a command that runs: `--data` has no mix format
    assert (out / "reliability.png").stat().st_size > 1000
    history = json.loads((out / "training.json").read_text())["history"]
    assert set(history[0]["sets"]) == {"news", "crypto"}  # per-set scores at each validation
    assert "crypto" in output and "calibration temperature" in output


def test_eval_scores_every_set_in_one_table_and_json(
    mixed_model: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = mixed_model
    target = tmp_path / "eval.json"
    result = CliRunner().invoke(
        cli,
        ["eval", "--model", str(out), "--data-mix", str(FIXTURES / "mix.toml"),
         "--json", str(target)],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["set", "n", "accuracy", "macro-F1", "weighted-F1", "ECE"]
    assert lines[2].split()[0] == "news" and lines[3].split()[0] == "crypto"
    document = json.loads(target.read_text())
    crypto = document["sets"]["crypto"]
    assert set(document["sets"]) == {"news", "crypto"}
    assert {"accuracy", "macro_f1", "weighted_f1", "n"} <= set(crypto)
    assert crypto["n"] == 10  # the rows from test_from (2021-07, 2021-08)
    assert document["sets"]["news"]["n"] == 47  # no test rows: all of it
    assert "accuracy" not in document  # several sets: only under `sets`
    # the training run's own test scores of the crypto set are what eval finds again
    trained = json.loads((out / "eval.json").read_text())["sets"]["crypto"]
    assert crypto["accuracy"] == pytest.approx(trained["accuracy"])
    assert crypto["calibration"]["ece_after"] == pytest.approx(
        trained["calibration"]["ece_after"], abs=1e-4
    )


def test_eval_with_one_set_keeps_the_top_level_keys(
    mixed_model: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = mixed_model
    target = tmp_path / "one.json"
    result = CliRunner().invoke(
        cli,
        ["eval", "--model", str(out), "--data", str(FIXTURES / "news.csv"), "--json", str(target)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "confusion matrix" in result.output and "calibration: temperature" in result.output
    document = json.loads(target.read_text())
    assert document["n"] == 47 and 0 <= document["accuracy"] <= 1
    assert document["sets"]["news"]["accuracy"] == document["accuracy"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data", "a.csv", "--data-mix", "MIX"], "--data and --data-mix: give one of them"),
        ([], "no data: give --data FILE"),
        (["--data", "NEWS", "--data", "NEWS", "--valid", "NEWS"], "--valid and --test belong"),
        (
            [
                "--data",
                "NEWS",
                "--data",
                "NEWS",
                "--format",
                "csv",
                "--format",
                "csv",
                "--format",
                "csv",
            ],
            "2 --data but 3 --format",
        ),
    ],
)
def test_bad_set_flags_are_one_line(tmp_path: Path, extra: list[str], message: str) -> None:
    news, mix = str(FIXTURES / "news.csv"), str(FIXTURES / "mix.toml")
    args = [a.replace("NEWS", news).replace("MIX", mix) for a in extra]
    result = CliRunner().invoke(cli, ["train", *args, "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, UserError), result.output
    assert message in str(result.exception)
    assert not (tmp_path / "m" / "lorabot.json").exists()


def test_init_from_starts_where_the_source_model_stopped(
    mixed_model: tuple[Path, str], tiny_bert: Path, tmp_path: Path
) -> None:
    from training.classifier import load_model

    source, _ = mixed_model
    out = tmp_path / "seeded"
    args = ["train", "--data", str(FIXTURES / "news.csv"), "--base", str(tiny_bert), "--out",
            str(out), "--no-progress", "--init-from", str(source), *TINY]  # fmt: skip
    # one step at a vanishing learning rate: the weights are the source's
    args[args.index("--epochs") + 1] = "0.01"
    args[args.index("--lr") + 1] = "1e-12"
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    texts = [line.split(",")[0] for line in (FIXTURES / "news.csv").read_text().splitlines()[1:9]]
    seeded = load_model(out).predict_proba(texts, calibrated=False)
    original = load_model(source).predict_proba(texts, calibrated=False)
    assert seeded == pytest.approx(original, abs=1e-5)
    manifest = read_manifest(out)
    # what the source learnt from is part of what this model saw
    assert manifest.data["span"] == read_manifest(source).data["span"]
    assert manifest.data["span_unknown"] == ["news"]
    assert manifest.data["init_from"]["folder"] == str(source)

    args[args.index("--r") + 1] = "8"
    mismatch = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert isinstance(mismatch.exception, UserError)
    assert str(mismatch.exception).startswith(f"--init-from {source}: its weights do not fit")


def test_a_mix_cards_check_command_scores_each_readable_test_file() -> None:
    from training.card import _mix_check

    sets = [
        {"name": "tfns", "format": "tfns", "test": "valid.csv"},
        {"name": "crypto", "format": "columns", "test": "events.csv"},  # needs the mix's columns
        {"name": "mine", "format": "auto", "test": ""},
    ]
    assert _mix_check(sets) == "lorabot eval --model FOLDER --data valid.csv --format tfns"
    assert _mix_check(sets[1:]) == ""
