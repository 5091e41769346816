"""`lorabot hyperopt`'s run: check everything, load the data once, fork the workers, report.

The order is what keeps bad input from leaving anything half-written: the space, the strategy,
the folds and the storage (and any existing study's purpose) are checked before a trial runs or a
file is written in `--out`. The data are parsed and every headline answered before the workers
fork, so `--jobs J` processes share one parse and the model never runs in a trial.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.clock import Clock
from bot.config import Settings
from bot.errors import UserError
from bot.optimize import data as trial_data
from bot.optimize.folds import walk_forward
from bot.optimize.objective import OBJECTIVES
from bot.optimize.space import Space, build_space
from bot.optimize.study import existing_purpose, fold_study_name, open_storage, refuse_other
from bot.optimize.worker import Job, run_worker
from bot.research.ledger import data_hash


@dataclass(frozen=True)
class HyperoptOptions:
    news_path: Path
    bars_path: Path
    out_dir: Path
    trials: int = 100
    folds: int = 4
    objective: str = "sharpe"
    jobs: int = 1
    storage: str | None = None
    study: str = "hyperopt"
    space: tuple[str, ...] = ()
    walk: str = "anchored"
    symbol: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    ledger_url: str | None = None
    seed: int = 0
    progress: bool | None = None


def check_space(settings: Settings, options: HyperoptOptions) -> Space:
    from strategies.loader import StrategyError, parameters

    try:
        declared = parameters(settings.strategy.use)
    except StrategyError as error:
        raise UserError(str(error)) from None
    return build_space(declared, options.space, settings.strategy.use)


def prepare(settings: Settings, options: HyperoptOptions, clock: Clock) -> Job:
    """Everything checked, the data loaded and answered: the job the workers share."""
    if options.objective not in OBJECTIVES:
        raise UserError(f"--objective {options.objective}: one of {', '.join(OBJECTIVES)}")
    if options.trials < 1 or options.jobs < 1:
        raise UserError("--trials and --jobs must be at least 1")
    space = check_space(settings, options)
    for path, flag in ((options.news_path, "--news"), (options.bars_path, "--bars")):
        if not path.is_file():
            raise UserError(f"{flag} {path}: no such file")
    purpose: dict[str, Any] = {
        "data": data_hash([options.bars_path, options.news_path], options.start, options.end),
        "files": f"{options.news_path.name}, {options.bars_path.name}",
        "strategy": settings.strategy.use,
        "walk": options.walk,
        "folds": options.folds,
        "objective": options.objective,
        "space": space.describe(),
    }
    if options.storage is None:
        journal = options.out_dir / "study.journal"
        if journal.exists():
            _check_existing(open_storage(None, options.out_dir), options.study, purpose)
    else:
        _check_existing(open_storage(options.storage, options.out_dir), options.study, purpose)
    loaded = trial_data.load(
        settings,
        news_path=options.news_path,
        bars_path=options.bars_path,
        symbol=options.symbol,
        start=options.start,
        end=options.end,
        progress=options.progress,
    )
    try:
        folds = walk_forward(loaded.start, loaded.end, options.folds, options.walk)
    except ValueError as error:
        raise UserError(str(error)) from None
    return Job(
        data=loaded,
        base=settings,
        space=space,
        folds=folds,
        objective=options.objective,
        trials=options.trials,
        study=options.study,
        storage_url=options.storage,
        out_dir=options.out_dir,
        ledger_url=options.ledger_url or settings.store_url,
        purpose=purpose,
        clock=clock,
        seed=options.seed,
    )


def _check_existing(storage: Any, study: str, purpose: dict[str, Any]) -> None:
    name = fold_study_name(study, 1)
    found = existing_purpose(storage, name)
    if found is not None:
        refuse_other(name, found, purpose)


def run_hyperopt(settings: Settings, options: HyperoptOptions, clock: Clock) -> dict[str, Any]:
    """The whole command; the hyperopt.json summary."""
    from bot.optimize.report import write_report

    job = prepare(settings, options, clock)
    try:
        options.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"--out {options.out_dir}: cannot make it ({error.strerror})") from None
    try:
        children = _fork_workers(job, options.jobs - 1)
        _own_share(job, options)
        for child in children:
            child.join()
        failed = [child for child in children if child.exitcode]
        if failed:
            raise UserError(f"{len(failed)} of {options.jobs - 1} worker processes failed")
        return write_report(job)
    finally:
        job.data.close()


def _own_share(job: Job, options: HyperoptOptions) -> None:
    """This process's worker, with a progress bar (trials, and the fold's best value so far)
    on stderr when it is a terminal."""
    from tqdm import tqdm

    disable = None if options.progress is None else not options.progress
    meter = tqdm(
        total=job.trials * len(job.folds), desc="hyperopt", unit=" trials", disable=disable
    )
    best: dict[int, float] = {}

    def tick(fold: int, finished: int, value: float) -> None:
        if value == value:  # not a pruned trial's NaN
            best[fold] = max(best.get(fold, value), value)
        meter.n = (fold - 1) * job.trials + finished  # every worker's, not only this one's
        meter.refresh()
        if fold in best:
            meter.set_postfix_str(f"fold {fold} best {best[fold]:.3f}")

    try:
        run_worker(job, 0, tick)
    finally:
        meter.close()


_JOB: Job | None = None


def _child(index: int) -> None:
    assert _JOB is not None
    code = 0
    try:
        run_worker(_JOB, index)
    except UserError as error:
        print(f"lorabot: error: worker {index}: {error}", file=sys.stderr)
        code = 1
    except Exception as error:  # one line, as the CLI does
        print(f"lorabot: worker {index}: {type(error).__name__}: {error}", file=sys.stderr)
        code = 1
    sys.stderr.flush()
    os._exit(code)  # no finalizers: the parent's database connections are the parent's


def _fork_workers(job: Job, count: int) -> list[multiprocessing.process.BaseProcess]:
    """`count` forked processes, each one more worker on the same studies."""
    global _JOB
    if count <= 0:
        return []
    if "fork" not in multiprocessing.get_all_start_methods():
        raise UserError("--jobs above 1 needs fork (Linux, macOS); run one command per worker")
    _JOB = job
    context = multiprocessing.get_context("fork")
    children: list[multiprocessing.process.BaseProcess] = [
        context.Process(target=_child, args=(i,)) for i in range(1, count + 1)
    ]
    for child in children:
        child.start()
    return children
