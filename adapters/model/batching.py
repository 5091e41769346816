"""Micro-batching of concurrent `classify` calls onto one model worker thread.

Requests that arrive while the model is busy are gathered and run together in its next pass,
which is where batching pays off; a request that finds the worker idle runs at once, so a lone
headline never waits for company (`max_wait = 0`, the default). A positive `max_wait` holds a
small batch back that long for more texts, which trades latency for throughput under a steady
trickle. The model runs on its own single thread: torch releases the GIL inside its kernels, so
the event loop keeps serving websockets and feeds while a batch runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from bot.protocols import ModelUnavailable

T = TypeVar("T")


@dataclass
class _Request(Generic[T]):
    texts: Sequence[str]
    future: asyncio.Future[list[T]] = field(repr=False)


class MicroBatcher(Generic[T]):
    def __init__(
        self,
        run: Callable[[list[str]], list[T]],
        executor: ThreadPoolExecutor,
        batch_size: int = 32,
        max_wait: float = 0.0,
        max_pending: int = 10_000,
    ) -> None:
        self._run = run
        self._executor = executor
        self._batch_size = batch_size
        self._max_wait = max_wait
        self._max_pending = max_pending
        self._queue: list[_Request[T]] = []
        self._pending_texts = 0
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0  # passes run (for tests and benchmarks)

    async def submit(self, texts: Sequence[str]) -> list[T]:
        if self._closed:
            raise ModelUnavailable("the model is closed")
        if not texts:
            return []
        if self._pending_texts + len(texts) > self._max_pending and self._pending_texts:
            raise ModelUnavailable(
                f"model queue full ({self._pending_texts} texts waiting, [model] max_pending)"
            )
        loop = asyncio.get_running_loop()
        request: _Request[T] = _Request(list(texts), loop.create_future())
        self._queue.append(request)
        self._pending_texts += len(texts)
        self._ensure_worker()
        assert self._wake is not None
        self._wake.set()
        return await request.future

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            # (re)start on this loop: a caller may have used the model under an earlier loop
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._loop())

    async def _loop(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                if self._max_wait > 0 and self._pending_texts < self._batch_size:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._fill(), self._max_wait)
                taken, self._queue = self._queue, []
                self._pending_texts = 0
                live = [r for r in taken if not r.future.done()]  # skip cancelled callers
                if not live:
                    continue
                texts = [t for r in live for t in r.texts]
                try:
                    results = await loop.run_in_executor(self._executor, self._run, texts)
                except Exception as error:  # each caller sees the failure, none is lost
                    for request in live:
                        if not request.future.done():
                            request.future.set_exception(error)
                    continue
                self.batches += 1
                start = 0
                for request in live:
                    end = start + len(request.texts)
                    if not request.future.done():
                        request.future.set_result(results[start:end])
                    start = end

    async def _fill(self) -> None:
        """Returns once a full batch is waiting (the caller bounds the wait)."""
        assert self._wake is not None
        while self._pending_texts < self._batch_size:
            await self._wake.wait()
            self._wake.clear()

    async def close(self) -> None:
        """Let the batch in flight finish; fail the ones still queued (callers keep their items)."""
        self._closed = True
        for request in self._queue:
            if not request.future.done():
                request.future.set_exception(ModelUnavailable("the model was closed"))
        self._queue = []
        self._pending_texts = 0
        worker, wake = self._worker, self._wake
        if (
            worker is not None
            and wake is not None
            and worker.get_loop() is asyncio.get_running_loop()
        ):
            wake.set()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
