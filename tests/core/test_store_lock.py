"""Issue 11.3: a second `lorabot run` on the same store is refused, naming the first one's pid;
the lock dies with its holder (SIGKILL included), so a restart is never locked out."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from bot.store import Store, StoreLockedError

from .store_daemon import (
    bot_command,
    environment,
    logged,
    replay_files,
    start_daemon,
    wait_for,
    write_config,
)


def test_a_store_is_held_by_one_run_until_closed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    first = Store(url, account="paper")
    first.acquire_run_lock()
    assert (tmp_path / "s.sqlite.lock").read_text().strip() == str(os.getpid())
    second = Store(url, account="other")  # reading (status, news) needs no lock
    with pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        second.acquire_run_lock()
    first.close()
    second.acquire_run_lock()
    second.close()


def test_an_in_memory_store_needs_no_lock() -> None:
    store = Store("sqlite://")
    store.acquire_run_lock()
    Store("sqlite://").acquire_run_lock()
    store.close()


@pytest.mark.slow
def test_a_second_daemon_on_one_data_directory_is_refused(tmp_path: Path) -> None:
    news, bars = replay_files(tmp_path)
    config = write_config(tmp_path)  # the default store: lorabot.sqlite in XDG_DATA_HOME
    data = tmp_path / "data"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = start_daemon(tmp_path, config, data, first_log, news, bars)
    try:
        wait_for(lambda: logged(first_log, "daemon starting"), 60, "the first daemon started")
        second = start_daemon(tmp_path, config, data, second_log, news, bars)
        assert second.wait(timeout=60) == 1
        lines = second_log.read_text().strip().splitlines()
        assert lines[-1].startswith("lorabot: error: another lorabot run")
        assert f"(pid {first.pid})" in lines[-1]
        assert "Traceback" not in second_log.read_text()
        assert first.poll() is None  # the first one trades on, undisturbed
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        third = Store(f"sqlite:///{data / 'lorabot' / 'lorabot.sqlite'}")
        third.acquire_run_lock()  # the OS dropped the dead daemon's lock
        third.close()
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()


@pytest.mark.slow
def test_the_run_lock_on_postgresql(tmp_path: Path) -> None:
    """An advisory lock per account: a daemon on PostgreSQL refuses a second one for its account,
    naming the first's pid, and lets a daemon for another account run beside it."""
    from .postgres import postgres_server

    with postgres_server() as url:
        news, bars = replay_files(tmp_path)
        config = write_config(tmp_path, store_url=url)
        log = tmp_path / "first.log"
        first = start_daemon(tmp_path, config, tmp_path / "data", log, news, bars)
        try:
            wait_for(lambda: logged(log, "daemon starting"), 60, "the daemon on PostgreSQL started")
            second = subprocess.run(
                _run_args(config, news, bars),
                capture_output=True,
                text=True,
                timeout=120,
                env=environment(tmp_path / "data"),
                cwd=tmp_path,
            )
            assert second.returncode == 1, second.stderr
            last = second.stderr.strip().splitlines()[-1]
            assert (
                f"another lorabot run (pid {first.pid} on 127.0.0.1) is trading account 'paper'"
                in last
            )
            other = Store(url, account="another")
            other.acquire_run_lock()  # another account: no conflict
            other.close()
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
            again = Store(url, account="paper")
            wait_for(lambda: _try_lock(again), 30, "the server dropped the dead daemon's lock")
            again.close()
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()


def _run_args(config: Path, news: Path, bars: Path) -> list[str]:
    return bot_command(
        "run", "--mode", "paper", "--config", config, "--replay-news", news, "--replay-bars", bars
    )


def _try_lock(store: Store) -> bool:
    try:
        store.acquire_run_lock()
    except StoreLockedError:
        return False
    return True
