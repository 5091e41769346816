"""One `lorabot run` per store: an exclusive lock held for the life of the daemon.

Two daemons on one data directory would trade one account twice (twice the risk limit) or fight
over the venue's state. The lock is one the operating system or the server releases by itself
when the holder dies, even by SIGKILL, so a crash never leaves a stale lock behind:
- SQLite: `flock` on `<store file>.lock`, which holds the pid of the daemon that has it.
- PostgreSQL: a session advisory lock (`pg_try_advisory_lock`) on a key derived from the account,
  on a connection kept for the run; the holder's pid is in that connection's `application_name`.
Backtests write a store of their own and take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bot.store.database import sqlite_path
from bot.store.errors import StoreError, StoreLockedError, display_url, explain

_NAMESPACE = 0x6C6F7261  # "lora": the first half of every lorabot advisory lock key


class RunLock(Protocol):
    def release(self) -> None: ...


class _NoLock:
    """An in-memory SQLite database: nothing else can open it."""

    def release(self) -> None:
        return None


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None
        try:
            self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as error:
            raise StoreError(f"cannot create the run lock {path}: {error.strerror}") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            assert self.fd is not None
            holder = os.pread(self.fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            self.release()
            raise StoreLockedError(
                f"another lorabot run (pid {holder}) is using the store next to {path}; "
                "stop it first, or give this one another data directory or store"
            ) from None
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None

    def __del__(self) -> None:  # a daemon that failed before its `finally` still lets go
        self.release()


class _AdvisoryLock:
    def __init__(self, engine: Engine, url: str, account: str) -> None:
        self.key = (_NAMESPACE, zlib.crc32(account.encode()) & 0x7FFFFFFF)
        self.account = account
        try:
            self.connection: Connection | None = engine.connect()
            self.connection.execute(
                sa.text("select set_config('application_name', :name, false)"),
                {"name": f"lorabot run pid {os.getpid()}"},
            )
            got = self.connection.execute(
                sa.text("select pg_try_advisory_lock(:a, :b)"), {"a": self.key[0], "b": self.key[1]}
            ).scalar()
            self.connection.commit()
        except sa.exc.SQLAlchemyError as error:
            self.release()
            raise explain(url, error, "taking the run lock") from None
        if not got:
            holder = self._holder()
            self.release()
            raise StoreLockedError(
                f"another lorabot run ({holder}) is trading account {account!r} on the store "
                f"{display_url(url)}; stop it first"
            )

    def _holder(self) -> str:
        assert self.connection is not None
        row = self.connection.execute(
            sa.text(
                "select a.application_name, a.client_addr from pg_locks l "
                "join pg_stat_activity a on a.pid = l.pid "
                "where l.locktype = 'advisory' and l.granted and l.objsubid = 2 "
                "and l.classid::bigint = :a and l.objid::bigint = :b"
            ),
            {"a": self.key[0], "b": self.key[1]},
        ).first()
        if row is None:
            return "pid unknown"
        name = str(row.application_name or "")
        where = f" on {row.client_addr}" if row.client_addr else ""
        return (name.removeprefix("lorabot run ") or "pid unknown") + where

    def release(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self.connection.execute(
                    sa.text("select pg_advisory_unlock(:a, :b)"),
                    {"a": self.key[0], "b": self.key[1]},
                )
                self.connection.commit()
            with contextlib.suppress(sa.exc.SQLAlchemyError):
                self.connection.close()
            self.connection = None


def acquire_run_lock(engine: Engine, url: str, account: str) -> RunLock:
    """The run lock for this store (and, on PostgreSQL, this account), or `StoreLockedError`."""
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine, url, account)
    path = sqlite_path(url)
    if path is None:
        return _NoLock()
    return _FileLock(path.with_name(path.name + ".lock"))
