"""SIGINT/SIGTERM reach a long-running command's stop path, and the handlers come off again."""

from __future__ import annotations

import asyncio
import os
import signal
import threading

import pytest

from bot.shutdown import stop_on_signals


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="loop signal handlers need the main thread",
)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_signals_call_back_and_the_undo_restores_the_defaults(signum: int) -> None:
    stopped = asyncio.Event()
    remove = stop_on_signals(stopped.set)
    try:
        os.kill(os.getpid(), signum)
        await asyncio.wait_for(stopped.wait(), 5)
    finally:
        remove()
    default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    assert signal.getsignal(signum) == default  # what asyncio puts back on removal
