"""Two hyperopt workers on one study in a throwaway PostgreSQL (Optuna's relational storage),
as workers on two machines would run: the same command, the same --storage and --study."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from bot.optimize.study import sqlalchemy_url
from bot.research.ledger import TrialLedger
from tests.optimize.conftest import ROOT, hyperopt_args

pytestmark = pytest.mark.slow


def test_two_workers_share_a_postgres_study_and_no_trial_is_lost_or_run_twice(
    lexicon_config: Path, tmp_path: Path
) -> None:
    from tests.core.postgres import postgres_server

    with postgres_server() as url:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        common = ["--trials", "4", "--folds", "2", "--storage", url, "--ledger", url,
                  "--study", "shared"]  # fmt: skip
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    *hyperopt_args(lexicon_config, tmp_path / f"out{i}", *common, "--seed", str(i)),
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(2)
        ]
        outputs = [w.communicate(timeout=600) for w in workers]
        for worker, (_, err) in zip(workers, outputs, strict=True):
            assert worker.returncode == 0, err
        storage = optuna.storages.RDBStorage(sqlalchemy_url(url))
        for index in (1, 2):
            study = optuna.load_study(study_name=f"shared.fold{index}", storage=storage)
            real = [t for t in study.trials if not t.user_attrs.get("surplus")]
            assert sorted(t.number for t in real) == [0, 1, 2, 3]  # none lost, none twice
            assert all(t.state.is_finished() for t in study.trials)
        assert TrialLedger.open(url).rows() == 8  # every trial, once
        for i in range(2):  # each worker's report read every trial, its own and the other's
            summary = json.loads((tmp_path / f"out{i}" / "hyperopt.json").read_text())
            assert summary["n_trials"] == 8
            assert [f["n_trials"] for f in summary["folds"]] == [4, 4]
        first, second = (json.loads((tmp_path / f"out{i}" / "hyperopt.json").read_text())
                         for i in range(2))  # fmt: skip
        assert first["best_params"] == second["best_params"]
