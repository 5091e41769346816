"""Retries with backoff and a circuit breaker, for a model server that may be down or slow.

A server that is down must not hold the signal service hostage: each call is retried a bounded
number of times with exponential backoff, and after `failures` calls in a row have failed the
breaker opens and every call fails at once (`ModelUnavailable`: the item is kept and retried later)
until `reset_after` has passed; then one trial call is let through (half-open), and its outcome
closes or re-opens the breaker.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.protocols import ModelUnavailable

T = TypeVar("T")


class Retryable(Exception):
    """A failure worth another try: connection refused/reset, timeout, 5xx, a garbled answer."""


class CircuitBreaker:
    def __init__(
        self, failures: int = 5, reset_after: float = 30.0, clock: Callable[[], float] | None = None
    ) -> None:
        self.failures = failures
        self.reset_after = reset_after
        self._clock = clock or time.monotonic
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial_running = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_after:
            return "half-open"
        return "open"

    def before_call(self) -> None:
        state = self.state
        if state == "open":
            assert self._opened_at is not None
            wait = self.reset_after - (self._clock() - self._opened_at)
            raise ModelUnavailable(
                f"model server circuit open after {self._consecutive} failed calls; "
                f"next try in {wait:.1f}s"
            )
        if state == "half-open":
            if self._trial_running:
                raise ModelUnavailable("model server circuit half-open: a trial call is running")
            self._trial_running = True

    def release_trial(self) -> None:
        self._trial_running = False

    def record_success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_running = False

    def record_failure(self) -> None:
        self._consecutive += 1
        self._trial_running = False
        if self._opened_at is not None or self._consecutive >= self.failures:
            self._opened_at = self._clock()


async def call_with_retries(
    attempt: Callable[[], Awaitable[T]],
    breaker: CircuitBreaker,
    retries: int,
    backoff: float,
    what: str,
) -> T:
    """Run `attempt` until it succeeds, retrying `Retryable` failures; others pass straight up."""
    breaker.before_call()
    last: Retryable | None = None
    for number in range(retries + 1):
        if number:
            await asyncio.sleep(backoff * (2 ** (number - 1)))
        try:
            result = await attempt()
        except Retryable as error:
            last = error
            continue
        except asyncio.CancelledError:
            breaker.release_trial()
            raise
        except Exception:
            breaker.record_success()  # the server answered; the request itself was at fault
            raise
        breaker.record_success()
        return result
    breaker.record_failure()
    raise ModelUnavailable(f"{what} failed after {retries + 1} attempts: {last}") from last
