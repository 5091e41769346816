"""SIGINT and SIGTERM stop a long-running command cleanly, however it was started.

Why handlers on the event loop rather than KeyboardInterrupt: a process started from a
background shell inherits SIGINT ignored, and SIGTERM (what service managers send) raises nothing
at all; a loop handler catches both, and the command then stops through its normal path.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def stop_on_signals(callback: Callable[[], object]) -> Callable[[], None]:
    """Call `callback` on SIGINT/SIGTERM (where the loop supports it); returns the undo."""
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for signum in STOP_SIGNALS:
        # NotImplementedError: no loop signals here (Windows); RuntimeError/ValueError: not the
        # main thread of the main interpreter (tests drive commands from other threads).
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, callback)
            installed.append(signum)

    def remove() -> None:
        for signum in installed:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)

    return remove
