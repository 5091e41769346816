"""One hyperopt worker: for each fold, ask Optuna for parameters, replay, prune or tell.

Several workers (processes here or on other machines) share a fold's study. Each trial's number
comes from the storage, unique across workers, so a fold stops at exactly `trials` finished
trials: a worker that is handed a number at or past the limit marks it failed (a surplus ask,
never replayed, not counted) and moves on. Every replayed trial, pruned or not, is recorded in
the trial ledger with its daily Sharpe, so the deflated Sharpe's N is the number really tried.

A trial reports its objective at three checkpoints of its in-sample span (from the equity at each
day's first bar) so Optuna's median pruner can stop a hopeless one mid-replay.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from bot.clock import Clock
from bot.config import Settings
from bot.engine import Engine
from bot.events import Bar
from bot.luck_report import run_returns, trial_config
from bot.optimize.data import TrialData, replay_span
from bot.optimize.folds import Fold
from bot.optimize.objective import score
from bot.optimize.space import Space, trial_settings
from bot.optimize.study import finished, fold_study_name, open_fold_study, open_storage, running
from bot.portfolio import Portfolio
from bot.research.ledger import TrialLedger, config_hash, data_hash
from bot.research.luck import moments

CHECKPOINTS = 4  # the span in quarters: reports after the first three


def median_pruner() -> optuna.pruners.BasePruner:
    """Stop a trial whose objective so far is below the median of earlier trials at the same
    checkpoint (after five trials, and never at the first checkpoint)."""
    return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)


@dataclass
class Job:
    """Everything a worker needs; built once, before workers fork."""

    data: TrialData
    base: Settings
    space: Space
    folds: list[Fold]
    objective: str
    trials: int
    study: str
    storage_url: str | None
    out_dir: Path
    ledger_url: str
    purpose: dict[str, Any]
    clock: Clock
    seed: int = 0
    make_pruner: Callable[[], optuna.pruners.BasePruner] = median_pruner
    fold_hashes: dict[int, str] = field(default_factory=dict)

    def fold_hash(self, fold: Fold) -> str:
        """The in-sample span's data hash (what the ledger counts trials on)."""
        if fold.index not in self.fold_hashes:
            self.fold_hashes[fold.index] = data_hash(self.data.files, fold.is_start, fold.is_end)
        return self.fold_hashes[fold.index]


class Checkpoints:
    """Daily equity as the replay goes; the objective so far reported at each checkpoint."""

    def __init__(self, trial: optuna.Trial, start: datetime, end: datetime, job: Job) -> None:
        self.trial = trial
        self.job = job
        self.marks = [start + (end - start) * k / CHECKPOINTS for k in range(1, CHECKPOINTS)]
        self.initial = float(job.base.engine.initial_cash)
        self.closes: list[float] = []
        self.day: date | None = None
        self.portfolio: Portfolio | None = None

    def attach(self, engine: Engine) -> None:
        self.portfolio = engine.portfolio
        engine.bus.subscribe(Bar, self.on_bar)

    def on_bar(self, bar: Bar) -> None:
        day = bar.ts.date()
        if day == self.day:
            return
        assert self.portfolio is not None
        if self.day is not None:
            self.closes.append(float(self.portfolio.equity))
        self.day = day
        if self.marks and bar.ts >= self.marks[0]:
            step = CHECKPOINTS - len(self.marks)
            self.marks.pop(0)
            self.trial.report(score(self.job.objective, self.returns()), step)
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned at checkpoint {step}")

    def returns(self) -> np.ndarray:
        values = np.asarray([self.initial, *self.closes], dtype=float)
        return values[1:] / values[:-1] - 1.0 if values.size > 1 else np.zeros(0)


def run_worker(
    job: Job, worker: int, on_trial: Callable[[int, int, float], None] | None = None
) -> int:
    """This worker's share of every fold; the number of trials it replayed."""
    storage = open_storage(job.storage_url, job.out_dir)
    ledger = TrialLedger.open(job.ledger_url)
    distributions = job.space.distributions()
    done = 0
    try:
        for fold in job.folds:
            sampler = optuna.samplers.TPESampler(seed=job.seed + 1000 * fold.index + worker)
            pruner = job.make_pruner()
            name = fold_study_name(job.study, fold.index)
            study = open_fold_study(storage, name, job.purpose, sampler, pruner)
            while len(finished(study, job.trials)) + running(study, job.trials) < job.trials:
                trial = study.ask(distributions)
                if trial.number >= job.trials:
                    trial.set_user_attr("surplus", True)
                    study.tell(trial, state=TrialState.FAIL)
                    break
                value = run_trial(job, fold, study, trial, ledger)
                done += 1
                if on_trial is not None:
                    on_trial(fold.index, len(finished(study, job.trials)), value)
    finally:
        ledger.engine.dispose()
    return done


def run_trial(
    job: Job, fold: Fold, study: optuna.Study, trial: optuna.Trial, ledger: TrialLedger
) -> float:
    """Replay one trial on the fold's in-sample span, record it, tell the study."""
    settings = trial_settings(job.base, job.space, trial.params)
    checkpoints = Checkpoints(trial, fold.is_start, fold.is_end, job)
    run = f"{study.study_name}#{trial.number}"
    try:
        recording = replay_span(job.data, settings, fold.is_start, fold.is_end, checkpoints.attach)
    except optuna.TrialPruned:
        returns = checkpoints.returns()
        _record(job, fold, settings, ledger, returns, run, trial)
        study.tell(trial, state=TrialState.PRUNED)
        return float("nan")
    returns = run_returns(recording, float(settings.engine.initial_cash))
    _record(job, fold, settings, ledger, returns, run, trial)
    value = score(job.objective, returns)
    study.tell(trial, value)
    return value


def _record(
    job: Job,
    fold: Fold,
    settings: Settings,
    ledger: TrialLedger,
    returns: np.ndarray,
    run: str,
    trial: optuna.Trial,
) -> None:
    stats = moments(returns)
    for key, value in (
        ("daily_sharpe", stats.sharpe),
        ("skew", stats.skew),
        ("kurtosis", stats.kurtosis),
        ("n_days", stats.n),
    ):
        trial.set_user_attr(key, value)
    ledger.record(
        kind="hyperopt",
        data=job.fold_hash(fold),
        config=config_hash(trial_config(settings)),
        daily_sharpe=stats.sharpe,
        n_days=stats.n,
        recorded_at=job.clock.now(),
        run=run,
    )
