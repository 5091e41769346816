"""Persistence: everything that happened, in SQLite (WAL) by default or any SQLAlchemy URL.

The package's parts, each with its reasons in its docstring:
- `database`: engine creation, durability settings, checks at open, alembic migration (a store
  made by an older version opens after an upgrade; a corrupt or foreign one is refused).
- `buffer`: the write buffer; batched in a replay, immediate where durability matters, and what
  happens when a commit fails.
- `journal`: accounts, runs, signals, orders, fills and snapshots.
- `news`: the news log, all that the news poller and the signal service need.
- `rows`: record <-> event mapping.
- `lock`: one `lorabot run` per store.

`Store` is all of them on one database: it is a `TradingJournal` and a `NewsLog`.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from bot.store.buffer import TABLES, FailureHandler, WriteBuffer
from bot.store.database import MIGRATIONS, make_engine, migrate, open_database
from bot.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreWriteError,
    display_url,
)
from bot.store.journal import AccountState, Reconciliation, StoredSnapshot, TradingJournal
from bot.store.lock import RunLock, acquire_run_lock
from bot.store.news import NewsLog


class Store(TradingJournal, NewsLog):
    """The trading journal and the news log on one checked, migrated database."""

    def __init__(
        self,
        url: str,
        *,
        account: str = "default",
        run_id: str = "",
        durable: bool = True,
        commit_every: int = 256,
    ) -> None:
        self.url = url
        self.engine = open_database(url)
        buffer = WriteBuffer(self.engine, url, commit_every)
        TradingJournal.__init__(self, buffer, account, run_id, durable)
        NewsLog.__init__(self, buffer)
        self._t = TABLES
        self._run_lock: RunLock | None = None

    @property
    def commit_every(self) -> int:
        return self.buffer.commit_every

    @property
    def failed(self) -> bool:
        """True once a commit has failed: nothing more is written (see `bot.store.buffer`)."""
        return self.buffer.failure is not None

    def on_failure(self, handler: FailureHandler) -> None:
        """Tell `handler`, once, when a commit fails, instead of raising where it happened.

        The daemon's handler halts trading and stops the run. Durable writes (orders, fills)
        raise all the same, so that nothing is sent that is not recorded.
        """
        self.buffer.on_failure = handler

    def acquire_run_lock(self) -> None:
        """Hold this store for one daemon until `close` (or the process's death); a second
        daemon gets `StoreLockedError` naming the first one's pid."""
        if self._run_lock is None:
            self._run_lock = acquire_run_lock(self.engine, self.url, self.account)

    def close(self) -> None:
        try:
            self.buffer.flush()
        finally:
            if self._run_lock is not None:
                self._run_lock.release()
                self._run_lock = None
            self.engine.dispose()


__all__ = [
    "MIGRATIONS",
    "AccountState",
    "NewsLog",
    "Reconciliation",
    "SQLModel",
    "Store",
    "StoreCorruptError",
    "StoreError",
    "StoreLockedError",
    "StoreWriteError",
    "StoredSnapshot",
    "TradingJournal",
    "display_url",
    "make_engine",
    "migrate",
]
