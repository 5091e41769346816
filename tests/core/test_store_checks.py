"""Issues 11.6 and 11.10: a corrupt, foreign, newer, read-only or unreachable store is refused at
start with one line and a user-error exit, through the real `status` and `run` commands, and a
refused file is left exactly as it was; an empty file is used, with a warning."""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from bot.events import NewsItem
from bot.store import Store

from .store_daemon import bot_command, environment, replay_files

T = datetime(2024, 1, 1, tzinfo=UTC)


def lorabot(folder: Path, store_url: str, *args: str | Path) -> subprocess.CompletedProcess[str]:
    config = folder / "store.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n[model]\nbackend = "lexicon"\n')
    return subprocess.run(
        bot_command(*args, "--config", config),
        capture_output=True,
        text=True,
        timeout=60,
        env=environment(folder / "data"),
        cwd=folder,
    )


def status(folder: Path, store_url: str) -> subprocess.CompletedProcess[str]:
    return lorabot(folder, store_url, "status")


def run(folder: Path, store_url: str) -> subprocess.CompletedProcess[str]:
    news, bars = replay_files(folder, bars=16)
    return lorabot(folder, store_url, "run", "--replay-news", news, "--replay-bars", bars)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lorabot: error: store "), lines[0]
    return lines[0]


def a_store(path: Path) -> Path:
    """A real store with an account and a few hundred news items (several pages of b-trees)."""
    store = Store(f"sqlite:///{path}", durable=False)
    store.open_account("paper", "paper", Decimal("10000"), T)
    for n in range(300):
        store.record_news(NewsItem(f"n{n}", "s", "Bitcoin moves on news " * 20, T))
    store.close()
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def overwrite(path: Path, offset: int, size: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(random.Random(11).randbytes(size))


def test_random_bytes_inside_the_file_are_refused_by_status_and_run(tmp_path: Path) -> None:
    db = a_store(tmp_path / "s.sqlite")
    overwrite(db, 8192, 4096)  # pages 3 and 4: b-tree pages of the tables
    before = digest(db)
    url = f"sqlite:///{db}"
    line = one_error_line(status(tmp_path, url))
    assert "is corrupt (quick_check: " in line and "restore it from a backup" in line
    result = run(tmp_path, url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == line
    assert digest(db) == before  # nothing was written into the corrupt file


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    db = a_store(tmp_path / "s.sqlite")
    overwrite(db, 0, 100)  # the header
    line = one_error_line(status(tmp_path, f"sqlite:///{db}"))
    assert "is corrupt (file is not a database)" in line


def test_an_empty_file_is_used_with_a_warning(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    db.touch()
    result = status(tmp_path, f"sqlite:///{db}")
    assert result.returncode == 0, result.stderr
    assert "the store file is empty: starting a fresh store" in result.stderr
    assert "no accounts in" in result.stdout


def test_a_store_from_a_newer_version_is_refused_untouched(tmp_path: Path) -> None:
    db = a_store(tmp_path / "s.sqlite")
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("update alembic_version set version_num = 'f00dfeed9999'")
    before = digest(db)
    line = one_error_line(status(tmp_path, f"sqlite:///{db}"))
    assert "is at schema revision 'f00dfeed9999', which this lorabot does not know" in line
    assert digest(db) == before


def test_a_database_that_is_not_a_store_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as connection, connection:
        connection.execute("create table invoices (id integer primary key, total text)")
    line = one_error_line(status(tmp_path, f"sqlite:///{db}"))
    assert "holds tables (invoices) but no migration version: it is not a lorabot store" in line


@contextlib.contextmanager
def folder_made_read_only(where: Path) -> Iterator[Callable[[], None]]:
    """A folder, and a function that makes it read-only: a remounted tmpfs as root (root ignores
    file modes), mode 0o555 otherwise."""
    where.mkdir()
    if os.geteuid() != 0:
        try:
            yield lambda: where.chmod(0o555)
        finally:
            where.chmod(0o755)
        return
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()!r}")
    try:
        yield lambda: subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_read_only_store_is_one_line(tmp_path: Path) -> None:
    with folder_made_read_only(tmp_path / "ro") as make_read_only:
        db = a_store(tmp_path / "ro" / "s.sqlite")
        make_read_only()
        line = one_error_line(status(tmp_path, f"sqlite:///{db}"))
    assert "is read-only (its " in line and "is not writable)" in line


def test_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql+psycopg://lorabot:hunter2@127.0.0.1:{port}/lorabot"
    line = one_error_line(status(tmp_path, url))
    assert f"store postgresql+psycopg://lorabot:***@127.0.0.1:{port}/lorabot is unreachable" in line
    assert "hunter2" not in line
    result = run(tmp_path, url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == line
