"""`lorabot hyperopt` end to end on the bundled sample (lexicon model, 12 days of 15m bars)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import optuna
import pytest

from bot.clock import LiveClock
from bot.config import load_settings
from bot.optimize.run import HyperoptOptions, prepare
from bot.optimize.study import open_storage
from bot.optimize.worker import run_worker
from bot.research.ledger import TrialLedger
from tests.optimize.conftest import BARS, NEWS, hyperopt_args, lorabot


def in_process(args: list[str]) -> int:
    """The CLI in this process (faster than a subprocess for what fails before any trial)."""
    from bot.cli import main

    try:
        main(args)
    except SystemExit as done:
        return int(done.code or 0)
    return 0


KEYS = {"is_start", "is_end", "oos_start", "oos_end", "is_value", "oos_value", "params"}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """3 trials a fold, 2 folds, 2 worker processes on one journal file."""
    tmp = tmp_path_factory.mktemp("hyperopt")
    config = tmp / "config.toml"
    config.write_text(
        f'[store]\ndata_dir = "{tmp / "data"}"\ncache_dir = "{tmp / "cache"}"\n'
        '[model]\nbackend = "lexicon"\n[strategy]\nreevaluate_interval = "1h"\n'
    )
    out = tmp / "out"
    ledger = f"sqlite:///{tmp / 'ledger.sqlite'}"
    done = lorabot(
        hyperopt_args(config, out, "--trials", "3", "--folds", "2", "--jobs", "2",
                      "--ledger", ledger, "--space", "threshold=0.5:0.8"),
        tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "6 trials" in done.stdout
    return tmp, out, config


@pytest.mark.slow
def test_the_report_has_every_file_and_key(run: tuple[Path, Path, Path]) -> None:
    _, out, _ = run
    for name in (
        "hyperopt.json",
        "hyperopt.md",
        "best.toml",
        "oos_equity.png",
        "history_fold1.png",
        "history_fold2.png",
        "study.journal",
    ):
        assert (out / name).stat().st_size > 0, name
    summary = json.loads((out / "hyperopt.json").read_text())
    assert summary["n_trials"] == 6 and len(summary["folds"]) == 2
    for fold in summary["folds"]:
        assert set(fold) >= KEYS and fold["n_trials"] == 3
        assert 0.5 <= fold["params"]["threshold"] <= 0.8
        assert fold["is_end"] <= fold["oos_start"]
    assert summary["best_params"] == summary["folds"][-1]["params"]
    assert isinstance(summary["oos_value"], float) and summary["oos_equity"]
    assert "Out-of-sample sharpe" in (out / "hyperopt.md").read_text()
    assert not list(out.glob(".hyperopt-partial*"))


@pytest.mark.slow
def test_two_workers_ran_every_trial_once_and_the_ledger_has_them_all(
    run: tuple[Path, Path, Path],
) -> None:
    tmp, out, _ = run
    storage = open_storage(None, out)
    for index in (1, 2):
        trials = optuna.load_study(study_name=f"hyperopt.fold{index}", storage=storage).trials
        real = [t for t in trials if t.state.is_finished() and not t.user_attrs.get("surplus")]
        assert sorted(t.number for t in real) == [0, 1, 2]
        assert all(
            t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
            for t in real
        )
    ledger = TrialLedger.open(f"sqlite:///{tmp / 'ledger.sqlite'}")
    assert ledger.rows() == 6


@pytest.mark.slow
def test_best_toml_runs_unchanged_in_a_backtest(run: tuple[Path, Path, Path]) -> None:
    tmp, out, _ = run
    best = tomllib.loads((out / "best.toml").read_text())
    params = json.loads((out / "hyperopt.json").read_text())["best_params"]
    assert best["strategy"]["use"] == "vote"
    assert best["strategy"]["threshold"] == params["threshold"]
    done = lorabot(["--config", str(out / "best.toml"), "backtest", "--news", str(NEWS), "--bars",
                    str(BARS), "--no-lag", "--out", str(tmp / "bt"), "--to", "2024-01-05T00:00Z",
                    "--ledger", f"sqlite:///{tmp / 'l2.sqlite'}"], tmp)  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_a_study_reused_with_another_strategy_is_refused_naming_both(
    run: tuple[Path, Path, Path],
) -> None:
    tmp, out, config = run
    before = (out / "hyperopt.json").read_bytes()
    other = tmp / "trend.toml"
    other.write_text(config.read_text().replace("[strategy]\n", '[strategy]\nuse = "trend"\n'))
    done = lorabot(hyperopt_args(other, out, "--trials", "3", "--folds", "2"), tmp)
    assert done.returncode != 0
    line = done.stderr.strip()
    assert "\n" not in line and "exists with other data or another strategy" in line
    assert "strategy 'vote'" in line and "strategy 'trend'" in line
    assert (out / "hyperopt.json").read_bytes() == before


@pytest.mark.slow
def test_hopeless_trials_are_pruned_mid_replay_and_still_counted(
    lexicon_config: Path, tmp_path: Path
) -> None:
    settings = load_settings(lexicon_config)
    ledger = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    options = HyperoptOptions(
        news_path=NEWS, bars_path=BARS, out_dir=tmp_path / "out", trials=2, folds=1,
        start=datetime(2024, 1, 1, tzinfo=UTC), end=datetime(2024, 1, 9, tzinfo=UTC),
        ledger_url=ledger,
    )  # fmt: skip
    job = prepare(settings, options, LiveClock())
    # a pruner that stops every trial at its first checkpoint
    job.make_pruner = lambda: optuna.pruners.ThresholdPruner(lower=1e9)
    options.out_dir.mkdir()
    assert run_worker(job, 0) == 2
    study = optuna.load_study(
        study_name="hyperopt.fold1", storage=open_storage(None, options.out_dir)
    )
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.PRUNED] * 2
    assert all(t.last_step == 1 for t in study.trials)  # stopped at the first checkpoint
    assert TrialLedger.open(ledger).rows() == 2
    job.data.close()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--space", "threshold=0.9:0.4"], "--space threshold=0.9:0.4: the range is inverted"),
        (["--space", "threshold=0.5:0.5"], "the range is empty"),
        (
            ["--storage", "postgresql://nobody@127.0.0.1:1/none"],
            "--storage postgresql://nobody@127.0.0.1:1/none: cannot open it",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(
    lexicon_config: Path,
    tmp_path: Path,
    extra: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "out"
    code = in_process(hyperopt_args(lexicon_config, out, "--trials", "2", *extra))
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1 and message in err
    assert not out.exists()


def test_a_strategy_with_nothing_to_tune_is_one_line(
    lexicon_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain.py").write_text(
        "from strategies.protocol import Intent, NewsStrategy\n"
        "class Plain(NewsStrategy):\n    def decide(self, view):\n        return Intent(0)\n"
    )
    lexicon_config.write_text(
        lexicon_config.read_text().replace(
            "[strategy]\n", f'[strategy]\nuse = "{tmp_path / "plain.py"}:Plain"\n'
        )
    )
    out = tmp_path / "out"
    code = in_process(hyperopt_args(lexicon_config, out, "--trials", "2"))
    err = capsys.readouterr().err
    assert code != 0 and "declares no parameters: nothing to tune" in err
    assert not out.exists()
