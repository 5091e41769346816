"""The trial ledger: every configuration ever run on the same data, for the deflated Sharpe.

A Sharpe ratio that is the best of many tries is inflated by the trying. The deflated Sharpe
ratio corrects for it given N, the number of distinct configurations run on the same data, and
V, the variance of their Sharpes; this ledger counts both. Every backtest and every hyperopt
trial records a row: a hash of its data (the news and bar files' contents and the --from/--to
window), a hash of its configuration, and its daily (not annualised) Sharpe with the number of
days. A configuration run twice on the same data counts once, at the mean of its Sharpes.

The table lives in the main store's database (any SQLAlchemy URL: hyperopt workers sharing a
PostgreSQL store share one ledger), created on first use (`CREATE TABLE IF NOT EXISTS`
semantics); it is not part of the store's migrations because nothing else depends on it. Writes
are single-row inserts in their own transactions, so several processes can record at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

TABLE_NAME = "research_trials"
KINDS = ("backtest", "hyperopt")
_CHUNK = 1 << 20

metadata = sa.MetaData()
trials_table = sa.Table(
    TABLE_NAME,
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data_hash", sa.String(64), nullable=False),
    sa.Column("config_hash", sa.String(64), nullable=False),
    sa.Column("daily_sharpe", sa.Float, nullable=False),
    sa.Column("n_days", sa.Integer, nullable=False),
    sa.Column("run", sa.String(400), nullable=True),
    sa.Index("ix_research_trials_data_config", "data_hash", "config_hash"),
)


def data_hash(
    files: Iterable[Path | str], start: datetime | None = None, end: datetime | None = None
) -> str:
    """SHA-256 over the files' contents (in any order) and the replay window.

    Contents, not paths: the same data copied elsewhere is the same data, and an edited file is
    new data.
    """
    digests = []
    for name in files:
        digest = hashlib.sha256()
        with Path(name).open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digests.append(digest.hexdigest())
    window = [start.isoformat() if start else "", end.isoformat() if end else ""]
    payload = json.dumps({"files": sorted(digests), "window": window})
    return hashlib.sha256(payload.encode()).hexdigest()


def config_hash(config: Mapping[str, object]) -> str:
    """SHA-256 of the configuration as canonical JSON (keys sorted; Decimal and paths as text)."""
    payload = json.dumps(config, sort_keys=True, separators=(",", ":"), default=_plain)
    return hashlib.sha256(payload.encode()).hexdigest()


def _plain(value: object) -> str:
    if isinstance(value, Decimal | Path | datetime):
        return str(value)
    raise TypeError(f"configuration value of type {type(value).__name__} cannot be hashed")


@dataclass(frozen=True)
class TrialCount:
    """What the deflated Sharpe needs from the ledger for one data hash."""

    trials: int
    variance: float
    sharpes: tuple[float, ...]


class TrialLedger:
    """Records trials and counts them per data hash, in any SQLAlchemy database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False

    @classmethod
    def open(cls, url: str) -> TrialLedger:
        """A ledger on the main store's URL, with the store's engine settings (WAL, timeout)."""
        from bot.store import make_engine

        return cls(make_engine(url))

    def _ensure_table(self) -> None:
        if self._ready:
            return
        try:
            metadata.create_all(self.engine, checkfirst=True)
        except DBAPIError:
            # Another process created it between our check and our CREATE: fine if it is there.
            if not sa.inspect(self.engine).has_table(TABLE_NAME):
                raise
        self._ready = True

    def record(
        self,
        *,
        kind: str,
        data: str,
        config: str,
        daily_sharpe: float,
        n_days: int,
        recorded_at: datetime,
        run: str | None = None,
    ) -> None:
        """One trial; `recorded_at` comes from the caller's Clock."""
        if kind not in KINDS:
            raise ValueError(f"trial kind must be one of {KINDS}, got {kind!r}")
        if not np.isfinite(daily_sharpe):
            raise ValueError(f"trial Sharpe must be a finite number, got {daily_sharpe!r}")
        if recorded_at.tzinfo is None:
            raise ValueError("recorded_at must be timezone-aware (UTC)")
        self._ensure_table()
        with self.engine.begin() as connection:
            connection.execute(
                trials_table.insert().values(
                    recorded_at=recorded_at,
                    kind=kind,
                    data_hash=data,
                    config_hash=config,
                    daily_sharpe=float(daily_sharpe),
                    n_days=int(n_days),
                    run=run,
                )
            )

    def count(self, data: str) -> TrialCount:
        """N distinct configurations on `data` and the variance V of their (mean) Sharpes.

        V is the sample variance (ddof=1); with fewer than two configurations it is 0.
        """
        self._ensure_table()
        query = (
            sa.select(trials_table.c.config_hash, sa.func.avg(trials_table.c.daily_sharpe))
            .where(trials_table.c.data_hash == data)
            .group_by(trials_table.c.config_hash)
            .order_by(trials_table.c.config_hash)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        sharpes = tuple(float(mean) for _, mean in rows)
        variance = float(np.var(sharpes, ddof=1)) if len(sharpes) >= 2 else 0.0
        return TrialCount(trials=len(sharpes), variance=variance, sharpes=sharpes)

    def rows(self, data: str | None = None) -> int:
        """How many trials are recorded (for `data`, or in all)."""
        self._ensure_table()
        query = sa.select(sa.func.count()).select_from(trials_table)
        if data is not None:
            query = query.where(trials_table.c.data_hash == data)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())
