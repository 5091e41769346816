"""What a hyperopt leaves in `--out`, read back from the studies (every worker's trials).

Per fold, the best finished in-sample trial is replayed once on the fold's unseen span; the
out-of-sample daily returns of all folds, stitched in time order, are the headline: a tuned
strategy is only as good as what it did on data its tuning never saw. The in-sample best is
beside it with the haircut, and its deflated Sharpe against the trial ledger's count for that
span (every trial tried, across workers and earlier runs).

Files: `hyperopt.json` (documented in the README), `hyperopt.md`, `oos_equity.png`, Optuna's
optimisation history and parameter importances per fold (`history_fold<i>.png`,
`importance_fold<i>.png`) and `best.toml`: the run's configuration with the last fold's best
parameters (the most data), which `lorabot backtest --config best.toml` runs unchanged. Files
are written to a scratch folder first and moved in at the end, so an error leaves none half.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from bot.config import dump_toml
from bot.metrics import daily_closes
from bot.optimize.data import replay_span
from bot.optimize.objective import score
from bot.optimize.space import trial_settings
from bot.optimize.study import (
    JOURNAL_NAME,
    finished,
    fold_study_name,
    open_storage,
    redact,
    running,
)
from bot.optimize.worker import Job
from bot.research.ledger import TrialLedger
from bot.research.luck import dsr, psr

WAIT_S = 3600.0  # how long the report waits for other workers' running trials


@dataclass
class FoldResult:
    index: int
    is_start: str
    is_end: str
    oos_start: str
    oos_end: str
    is_value: float
    oos_value: float
    params: dict[str, Any]
    n_trials: int
    n_pruned: int
    dsr: float
    dsr_trials: int
    oos_days: list[tuple[date, float]] = field(default_factory=list, repr=False)


def wait_for_workers(study: optuna.Study, limit: int) -> None:
    began = time.monotonic()
    while running(study, limit) and time.monotonic() - began < WAIT_S:
        time.sleep(1.0)


def fold_result(job: Job, study: optuna.Study, index: int, ledger: TrialLedger) -> FoldResult:
    fold = job.folds[index - 1]
    wait_for_workers(study, job.trials)
    real = finished(study, job.trials)
    complete = [t for t in real if t.state is TrialState.COMPLETE and t.value is not None]
    best = max(complete, key=lambda t: (t.value, -t.number)) if complete else None
    params = dict(best.params) if best is not None else {}
    settings = trial_settings(job.base, job.space, params)
    recording = replay_span(job.data, settings, fold.oos_start, fold.oos_end)
    days = daily_closes(recording.stamps, recording.equity)
    returns = _returns([v for _, v in days], float(settings.engine.initial_cash))
    count = ledger.count(job.fold_hash(fold))
    deflated = 0.0
    if best is not None and int(best.user_attrs.get("n_days", 0)) >= 2:
        deflated = dsr(
            float(best.user_attrs["daily_sharpe"]),
            int(best.user_attrs["n_days"]),
            max(count.trials, 1),
            count.variance,
            float(best.user_attrs["skew"]),
            float(best.user_attrs["kurtosis"]),
        )
    return FoldResult(
        index=index,
        is_start=fold.is_start.isoformat(),
        is_end=fold.is_end.isoformat(),
        oos_start=fold.oos_start.isoformat(),
        oos_end=fold.oos_end.isoformat(),
        is_value=float(best.value) if best is not None and best.value is not None else 0.0,
        oos_value=score(job.objective, returns),
        params={k: _plain(v) for k, v in params.items()},
        n_trials=len(real),
        n_pruned=sum(1 for t in real if t.state is TrialState.PRUNED),
        dsr=deflated,
        dsr_trials=count.trials,
        oos_days=days,
    )


def _returns(closes: list[float], initial: float) -> np.ndarray:
    values = np.asarray([initial, *closes], dtype=float)
    return values[1:] / values[:-1] - 1.0 if values.size > 1 else np.zeros(0)


def _plain(value: Any) -> Any:
    return round(value, 10) if isinstance(value, float) else value


def write_report(job: Job) -> dict[str, Any]:
    """Read every fold's study, score the out-of-sample spans, write the files; the JSON."""
    storage = open_storage(job.storage_url, job.out_dir)
    ledger = TrialLedger.open(job.ledger_url)
    scratch = job.out_dir / ".hyperopt-partial"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        studies = []
        results = []
        for fold in job.folds:
            name = fold_study_name(job.study, fold.index)
            study = optuna.load_study(study_name=name, storage=storage)
            studies.append(study)
            results.append(fold_result(job, study, fold.index, ledger))
        summary = _summary(job, results)
        best_settings = trial_settings(job.base, job.space, results[-1].params)
        (scratch / "best.toml").write_text(dump_toml(best_settings.to_toml_dict()))
        (scratch / "hyperopt.json").write_text(json.dumps(summary, indent=2) + "\n")
        (scratch / "hyperopt.md").write_text(markdown(summary))
        _charts(scratch, studies, summary)
        for path in scratch.iterdir():
            path.replace(job.out_dir / path.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        ledger.engine.dispose()
    return summary


def _summary(job: Job, results: list[FoldResult]) -> dict[str, Any]:
    initial = float(job.base.engine.initial_cash)
    stitched: list[float] = []
    equity: list[list[object]] = []
    level = initial
    for result in results:
        returns = _returns([v for _, v in result.oos_days], initial)
        for (day, _), r in zip(result.oos_days, returns.tolist(), strict=True):
            stitched.append(r)
            level *= 1.0 + r
            equity.append([day.isoformat(), round(level, 6)])
    oos = np.asarray(stitched, dtype=float)
    stats_psr = 0.0
    if oos.size >= 2 and float(oos.std(ddof=1)) > 0:
        from bot.research.luck import moments

        m = moments(oos)
        stats_psr = psr(m.sharpe, m.n, m.skew, m.kurtosis)
    is_mean = float(np.mean([r.is_value for r in results])) if results else 0.0
    oos_mean = float(np.mean([r.oos_value for r in results])) if results else 0.0
    folds = []
    for r in results:
        row = {k: v for k, v in r.__dict__.items() if k != "oos_days"}
        folds.append(row)
    return {
        "strategy": job.base.strategy.use,
        "objective": job.objective,
        "walk": job.purpose["walk"],
        "study": job.study,
        "storage": redact(job.storage_url) if job.storage_url else str(job.out_dir / JOURNAL_NAME),
        "trials_per_fold": job.trials,
        "n_trials": sum(r.n_trials for r in results),
        "n_pruned": sum(r.n_pruned for r in results),
        "folds": folds,
        "is_value": is_mean,
        "oos_value": score(job.objective, oos),
        "oos_fold_mean": oos_mean,
        "haircut": 1.0 - oos_mean / is_mean if is_mean > 0 else None,
        "oos_psr": stats_psr,
        "oos_days": int(oos.size),
        "best_params": results[-1].params if results else {},
        "oos_equity": equity,
    }


def markdown(summary: dict[str, Any]) -> str:
    lines = [
        f"# hyperopt: {summary['strategy']}, objective {summary['objective']}, "
        f"{summary['walk']} walk-forward",
        "",
        f"**Out-of-sample {summary['objective']} (stitched, {summary['oos_days']} days): "
        f"{summary['oos_value']:.3f}** (PSR {summary['oos_psr']:.3f}); in-sample best, mean of "
        f"folds: {summary['is_value']:.3f}; haircut "
        + ("n/a" if summary["haircut"] is None else f"{summary['haircut']:.0%}")
        + f". {summary['n_trials']} trials ({summary['n_pruned']} pruned).",
        "",
        "| fold | in-sample | out-of-sample | IS value | OOS value | DSR (N) | trials | params |",
        "|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for f in summary["folds"]:
        params = ", ".join(f"{k}={v}" for k, v in f["params"].items())
        lines.append(
            f"| {f['index']} | {f['is_start'][:10]} to {f['is_end'][:10]} | "
            f"{f['oos_start'][:10]} to {f['oos_end'][:10]} | {f['is_value']:.3f} | "
            f"{f['oos_value']:.3f} | {f['dsr']:.3f} ({f['dsr_trials']}) | {f['n_trials']} | "
            f"{params} |"
        )
    lines += ["", "![out-of-sample equity](oos_equity.png)", ""]
    for f in summary["folds"]:
        lines.append(f"![fold {f['index']} history](history_fold{f['index']}.png)")
        lines.append(f"![fold {f['index']} importance](importance_fold{f['index']}.png)")
    return "\n".join(lines) + "\n"


def _charts(folder: Path, studies: list[optuna.Study], summary: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as views

    for index, study in enumerate(studies, start=1):
        for name, plot in (
            ("history", views.plot_optimization_history),
            ("importance", views.plot_param_importances),
        ):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    axes = plot(study)
                except (ValueError, RuntimeError):  # too few finished trials to plot
                    continue
            plt.savefig(folder / f"{name}_fold{index}.png", dpi=80, bbox_inches="tight")
            plt.close("all")
            del axes
    figure, axes = plt.subplots(figsize=(8, 3))
    points = summary["oos_equity"]
    if points:
        axes.plot([np.datetime64(p[0]) for p in points], [p[1] for p in points])
    axes.set_title(
        f"stitched out-of-sample equity ({summary['objective']} {summary['oos_value']:.2f})"
    )
    figure.savefig(folder / "oos_equity.png", dpi=80, bbox_inches="tight")
    plt.close(figure)
