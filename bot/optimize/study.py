"""Where the trials live: Optuna storage, one study per fold, and what a study was made for.

By default a journal file in `--out` (`study.journal`: Optuna's append-only log with file locks,
safe for the `--jobs` processes of one machine). `--storage URL` names any SQLAlchemy database
(`postgresql://user@host/db`, read with psycopg 3): workers on other machines that run the same
command join the same studies.

Fold i of study NAME is the Optuna study `NAME.fold<i>`. Each carries what it was made for (a
hash of the data, the strategy, the walk, the fold count, the objective, the space) as study
attributes; a study name reused with other data or another strategy is refused, naming both.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from bot.errors import UserError

JOURNAL_NAME = "study.journal"
ATTRIBUTE = "lorabot"
#: finished trials: what a fold counts (a FAIL is a surplus ask, never replayed)
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def redact(url: str) -> str:
    """The URL without its password, for messages and reports."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def sqlalchemy_url(url: str) -> str:
    """`postgresql://` read with psycopg 3 (the driver lorabot installs)."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def open_storage(url: str | None, out_dir: Path) -> BaseStorage:
    """The study storage, or one error line when it cannot be reached."""
    if url is None:
        return JournalStorage(JournalFileBackend(str(out_dir / JOURNAL_NAME)))
    target = sqlalchemy_url(url)
    last: Exception | None = None
    for attempt in range(3):  # two workers creating Optuna's tables at once: one retries
        try:
            return RDBStorage(target, engine_kwargs={"pool_pre_ping": True})
        except Exception as error:  # sqlalchemy / driver errors: unreachable, refused, bad URL
            last = error
            if "could not connect" in str(error).lower() or "connection" in str(error).lower():
                break
            time.sleep(0.5 * (attempt + 1))
    reason = str(last).strip().splitlines()[0] if last else "unknown error"
    raise UserError(f"--storage {redact(url)}: cannot open it ({reason})")


def fold_study_name(study: str, index: int) -> str:
    return f"{study}.fold{index}"


def open_fold_study(
    storage: BaseStorage,
    name: str,
    purpose: Mapping[str, Any],
    sampler: optuna.samplers.BaseSampler,
    pruner: optuna.pruners.BasePruner,
) -> optuna.Study:
    """Create or join the study; refuse one made for other data, strategy or set-up."""
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )
    found = study.user_attrs.get(ATTRIBUTE)
    if found is None:
        study.set_user_attr(ATTRIBUTE, dict(purpose))
        return study
    refuse_other(name, found, purpose)
    return study


def refuse_other(name: str, found: Mapping[str, Any], wanted: Mapping[str, Any]) -> None:
    """One line naming both when `found` (the study's) differs from `wanted` (this run's)."""
    if found.get("data") != wanted.get("data") or found.get("strategy") != wanted.get("strategy"):
        raise UserError(
            f"study {name!r} exists with other data or another strategy: it holds strategy "
            f"{found.get('strategy')!r} on data {str(found.get('data'))[:12]} "
            f"({found.get('files', '?')}), this run is strategy {wanted.get('strategy')!r} on "
            f"data {str(wanted.get('data'))[:12]} ({wanted.get('files', '?')}); use another --study"
        )
    for key in ("walk", "folds", "objective", "space"):
        if found.get(key) != wanted.get(key):
            raise UserError(
                f"study {name!r} exists with {key} {found.get(key)!r}, this run asks for "
                f"{wanted.get(key)!r}; use another --study"
            )


def existing_purpose(storage: BaseStorage, name: str) -> dict[str, Any] | None:
    """What an existing study was made for (None when there is no such study)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None
    found = study.user_attrs.get(ATTRIBUTE)
    return dict(found) if isinstance(found, dict) else None


def finished(study: optuna.Study, limit: int) -> list[optuna.trial.FrozenTrial]:
    """The fold's real trials: finished ones numbered under the per-fold limit."""
    return [t for t in study.get_trials(deepcopy=False, states=FINISHED) if t.number < limit]


def running(study: optuna.Study, limit: int) -> int:
    trials = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
    return sum(1 for t in trials if t.number < limit)
