"""The signal service: NewsItem -> SentimentModel -> Signal, with batching and a cache.

Why it is built this way:
- The model is asynchronous (a vLLM server, or an in-process model on a worker thread) while the
  engine's handlers are synchronous. Live, `on_news` parks the item in a bounded queue and a
  batcher task sends the texts that arrive together in one `classify` call. In a replay the
  backtest first `prefetch`es every text in large batches; `on_news` then finds each answer in
  the cache and emits the same signals through the same code, synchronously and in order.
- Answers are cached by (model id, normalised text) in memory and in a SQLite file under the cache
  directory. The model id changes whenever the weights, manifest or inference variant change, so
  a retrained model never reads stale answers, and a repeated backtest never runs the model twice.
- A model that fails (server down, timeout) never costs an item: it is marked failed in the store
  and retried on a timer, and no signal — hence no trade — exists until an answer does.
- A market-aware model (an impact model, `MarketInputs`) also reads the item's market context:
  the features of the bars the service has seen by the item's `received` time (bars reach it
  through `on_bar`, in release order, so a replay stays past-only by construction). Its answers
  are cached under the text and the context together; a replay's prefetch only prepares the
  texts (the encoder's part), and each item is answered when it is released.
- Several models (`[[model.extra]]`, a `ModelReader` each) read every item: each answer is its
  own Signal carrying its model's id, scaled by the reader's vote weight. An item is done once
  every model has answered; after a failure only the models that have not answered are asked
  again, so no model's signal is ever emitted twice for one item.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.clock import Clock
from bot.events import Bar, Label, NewsItem, Signal
from bot.log import get_logger
from bot.protocols import (
    MarketAwareModel,
    MarketContext,
    MarketFeatures,
    ModelUnavailable,
    Prediction,
    SentimentModel,
)
from bot.symbols import SymbolTable

if TYPE_CHECKING:  # the store pulls in sqlmodel/sqlalchemy: imported where it is built
    from bot.store import Store

log = get_logger("bot.signals")

Emit = Callable[[object], None]
PREFETCH_CHUNK = 1024


def normalise(text: str) -> str:
    """The cache key's text: case and whitespace do not change what a headline means."""
    return " ".join(text.lower().split())


def context_key(text: str, context: MarketContext | None) -> str:
    """The cache key of a text read with a market context (the text alone without one)."""
    key = normalise(text)
    return key if context is None else f"{key}\x1f{context.key}"


@dataclass(frozen=True)
class History:
    """The bars a market-aware model's window needs before its first item: the last `seconds`
    of `symbol`'s bars, `interval_s` apart (0: the stream's own spacing). The daemon fetches
    them at start (`bot.assemble.live_parts`), so the first live headline gets real features."""

    symbol: str
    interval_s: int
    seconds: int


@dataclass(frozen=True)
class MarketInputs:
    """A market-aware model and where its contexts come from (the same model object the
    service is given as `model`, typed for its extra abilities)."""

    model: MarketAwareModel
    features: MarketFeatures
    history: History | None = None


@dataclass(frozen=True)
class ModelReader:
    """One model the service asks about every item: its market inputs (an impact model) and
    how much its signals count in the vote (`Signal.weight` is scaled by `weight`)."""

    model: SentimentModel
    market: MarketInputs | None = None
    weight: float = 1.0


Queued = tuple[NewsItem, tuple[int, ...]]  # an item and the readers (indices) still to answer it


class SignalCache:
    """(model id, normalised text) -> prediction; memory in front of an optional SQLite file."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._memory: dict[tuple[str, str], Prediction] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS predictions (model_id TEXT, text TEXT, label INTEGER,"
                " confidence REAL, p0 REAL, p1 REAL, p2 REAL, PRIMARY KEY (model_id, text))"
            )
            self._db.commit()
        self.hits = 0
        self.misses = 0

    def get_many(self, model_id: str, keys: Iterable[str]) -> dict[str, Prediction]:
        found: dict[str, Prediction] = {}
        missing: list[str] = []
        for key in keys:
            hit = self._memory.get((model_id, key))
            if hit is not None:
                found[key] = hit
            else:
                missing.append(key)
        if missing and self._db is not None:
            with self._lock:
                for start in range(0, len(missing), 500):
                    chunk = missing[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    rows = self._db.execute(
                        "SELECT text, label, confidence, p0, p1, p2 FROM predictions "
                        f"WHERE model_id = ? AND text IN ({marks})",
                        [model_id, *chunk],
                    ).fetchall()
                    for text, label, confidence, p0, p1, p2 in rows:
                        prediction = Prediction(Label(label), confidence, (p0, p1, p2), model_id)
                        self._memory[(model_id, text)] = prediction
                        found[text] = prediction
        return found

    def get(self, model_id: str, key: str) -> Prediction | None:
        hit = self._memory.get((model_id, key))
        if hit is None and self._db is not None:
            hit = self.get_many(model_id, [key]).get(key)
        if hit is None:
            self.misses += 1
        else:
            self.hits += 1
        return hit

    def put_many(self, model_id: str, items: Sequence[tuple[str, Prediction]]) -> None:
        for key, prediction in items:
            self._memory[(model_id, key)] = prediction
        if self._db is not None and items:
            with self._lock:
                self._db.executemany(
                    "INSERT OR REPLACE INTO predictions VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [(model_id, key, int(p.label), p.confidence, *p.probs) for key, p in items],
                )
                self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            with self._lock:
                self._db.close()
                self._db = None


class SignalService:
    def __init__(
        self,
        model: SentimentModel,
        symbols: SymbolTable,
        clock: Clock,
        emit: Emit,
        *,
        cache: SignalCache | None = None,
        store: Store | None = None,
        market_wide_weight: float = 0.5,
        batch_size: int = 32,
        max_wait: float = 0.0,
        max_pending: int = 10_000,
        timeout: float = 30.0,
        market: MarketInputs | None = None,
        also: Sequence[ModelReader] = (),
    ) -> None:
        self.model = model
        self.market = market
        self.readers = (ModelReader(model, market), *also)
        self._bar_features = [r.market.features for r in self.readers if r.market is not None]
        self._contexts: dict[tuple[str, int], MarketContext] = {}
        self._unanswered: dict[str, tuple[int, ...]] = {}  # after a failure: who is left
        self.symbols = symbols
        self.clock = clock
        self.emit = emit
        self.cache = cache or SignalCache()
        self.store = store
        self.market_wide_weight = market_wide_weight
        self.batch_size = batch_size
        self.max_wait = max_wait
        self.timeout = timeout
        self._queue: asyncio.Queue[Queued] | None = None
        self._max_pending = max_pending
        self._in_flight: set[str] = set()
        self.parked = 0
        self.failed_batches = 0
        self.model_calls = 0

    # -- the synchronous path (engine handler) ----------------------------------------------

    @property
    def reads_bars(self) -> bool:
        """Whether a model reads market contexts (the bars must reach `on_bar`)."""
        return bool(self._bar_features)

    def on_bar(self, bar: Bar) -> None:
        """A released bar: a market-aware model's contexts are computed from these."""
        for features in self._bar_features:
            features.on_bar(bar)

    def on_news(self, item: NewsItem) -> None:
        if item.id in self._in_flight:
            return
        asked = self._unanswered.pop(item.id, None)
        queued: list[int] = []
        contexts: dict[int, MarketContext] = {}  # kept for the batcher once the item is queued
        for index in range(len(self.readers)) if asked is None else asked:
            reader = self.readers[index]
            market = reader.market
            context = None if market is None else market.features.context(item.received)
            key = context_key(item.text, context)
            prediction = self.cache.get(reader.model.model_id, key)
            if prediction is None and market is not None and context and self._queue is None:
                # a replay: the texts were prepared by `prefetch`, the head is cheap
                prediction = market.model.classify_in_context([item.text], [context])[0]
                self.cache.put_many(reader.model.model_id, [(key, prediction)])
            if prediction is not None:
                self._emit_signals(item, prediction, reader.weight)
                continue
            if self._queue is None:
                raise RuntimeError(
                    f"no answer for news {item.id!r} in the cache and no live batcher running: "
                    "prefetch the replay's texts first"
                )
            queued.append(index)
            if context is not None:
                contexts[index] = context
        if not queued:
            self._done(item)
            return
        assert self._queue is not None
        if self._queue.full():
            # Never dropped: the item is in the store as pending and the retry timer brings it
            # back once the model has caught up (asking only the models still to answer).
            self.parked += 1
            self._unanswered[item.id] = tuple(queued)
            log.warning(
                "model backlog full: item parked for retry", news_id=item.id, parked=self.parked
            )
            return
        for index, context in contexts.items():
            self._contexts[(item.id, index)] = context
        self._in_flight.add(item.id)
        self._queue.put_nowait((item, tuple(queued)))

    def _done(self, item: NewsItem) -> None:
        if self.store is not None:
            self.store.mark_news(item.id, "done")

    def _emit_signals(self, item: NewsItem, prediction: Prediction, scale: float = 1.0) -> None:
        now = self.clock.now()
        targets: list[tuple[str | None, float]]
        known = [
            s for s in item.symbols if s in self.symbols.instruments or s in self.symbols.symbols
        ]
        if known:
            targets = [(symbol, 1.0) for symbol in known]
        elif item.symbols:
            # Only symbols the table does not know (Bybit delisting a coin lorabot never
            # trades): their own signals, which the engine records as not traded. Taken for
            # market-wide news, they would move every target.
            targets = [(symbol, 1.0) for symbol in item.symbols]
        elif self.market_wide_weight > 0:
            targets = [(None, self.market_wide_weight)]
        else:
            targets = []
        if scale != 1.0:
            targets = [(symbol, weight * scale) for symbol, weight in targets]
        for symbol, weight in targets:
            self.emit(
                Signal(
                    ts=now,
                    symbol=symbol,
                    label=prediction.label,
                    confidence=prediction.confidence,
                    probs=prediction.probs,
                    model_id=prediction.model_id,
                    source=item.source,
                    news_id=item.id,
                    published=item.published,
                    received=item.received,
                    weight=weight,
                    stale=item.stale,
                )
            )

    # -- batch classification -----------------------------------------------------------------

    async def classify(
        self, texts: Sequence[str], *, deadline: bool = True, model: SentimentModel | None = None
    ) -> list[Prediction]:
        """One call of `model` (the first one by default) under `timeout`; any failure becomes
        `ModelUnavailable`.

        Immediate retries are the model client's business (the vLLM client retries with backoff
        behind a circuit breaker); what fails here is parked and retried on the engine's timer,
        so one outage never multiplies into nested retry loops.
        """
        model = self.model if model is None else model
        limit = self.timeout if deadline else None
        try:
            self.model_calls += 1
            result = await asyncio.wait_for(model.classify(texts), limit)
        except ModelUnavailable:
            raise
        except (TimeoutError, ConnectionError, OSError) as error:
            raise ModelUnavailable(str(error) or type(error).__name__) from error
        if len(result) != len(texts):
            raise ModelUnavailable(f"model returned {len(result)} answers for {len(texts)} texts")
        return result

    async def prefetch(
        self, texts: Iterable[str], progress: Callable[[int], None] | None = None
    ) -> int:
        """Fill the cache for `texts` (a replay's news) in batches, for every model; returns how
        many were new (summed over the models). `progress` follows the first model."""
        texts = list(texts)
        new = 0
        for index, reader in enumerate(self.readers):
            new += await self._prefetch(reader, texts, progress if index == 0 else None)
        return new

    async def _prefetch(
        self, reader: ModelReader, texts: list[str], progress: Callable[[int], None] | None
    ) -> int:
        # A replay has no deadline: it waits for the model however long loading and answering
        # take (the per-call timeout is for the daemon, where a stuck call must not stall it).
        # The weights load only when the cache lacks an answer: a warm analysis or backtest
        # never pays the model's start-up (the model id is known before loading).
        model, model_id = reader.model, reader.model.model_id
        if reader.market is not None:
            # contexts are known only as the bars are released: prepare the texts now
            unique = list(dict.fromkeys(texts))
            await model.load()
            await reader.market.model.prepare(unique)
            if progress is not None:
                progress(len(unique))
            return len(unique)
        keys = list(dict.fromkeys(normalise(t) for t in texts))
        known = self.cache.get_many(model_id, keys)
        missing = [k for k in keys if k not in known]
        if missing:
            await model.load()
        # Large calls: a backend batches inside a call (the embedded model sorts by length).
        step = max(self.batch_size, PREFETCH_CHUNK)
        for start in range(0, len(missing), step):
            chunk = missing[start : start + step]
            predictions = await self.classify(chunk, deadline=False, model=model)
            self.cache.put_many(model_id, list(zip(chunk, predictions, strict=True)))
            if progress is not None:
                progress(len(chunk))
        return len(missing)

    async def start_extra_models(self) -> None:
        """Load the `[[model.extra]]` models now (the daemon starts the first one itself)."""
        for reader in self.readers[1:]:
            await reader.model.start()

    async def close_extra_models(self) -> None:
        for reader in self.readers[1:]:
            await reader.model.close()

    # -- the live batcher -------------------------------------------------------------------

    def start_live(self) -> None:
        """Enable the asynchronous path (call on the running loop before `run`)."""
        self._queue = asyncio.Queue(maxsize=self._max_pending)

    async def run(self) -> None:
        """Batch queued items into model calls until cancelled."""
        if self._queue is None:
            self.start_live()
        queue = self._queue
        assert queue is not None
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + self.max_wait
            while len(batch) < self.batch_size:
                if not queue.empty():  # what has already arrived joins at once, never waits
                    batch.append(queue.get_nowait())
                    continue
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(queue.get(), remaining))
                except TimeoutError:
                    break
            await self._answer(batch)

    async def _answer(self, batch: list[Queued]) -> None:
        """One call per model for the items of `batch` it has still to answer."""
        failed: dict[str, list[int]] = {}
        for index, reader in enumerate(self.readers):
            items = [item for item, asked in batch if index in asked]
            if items:
                await self._answer_with(index, reader, items, failed)
        for item, _ in batch:
            self._in_flight.discard(item.id)
            left = failed.get(item.id)
            if left is None:
                self._done(item)
                continue
            self._unanswered[item.id] = tuple(left)
            if self.store is not None:
                self.store.mark_news(item.id, "failed")

    async def _answer_with(
        self, index: int, reader: ModelReader, batch: list[NewsItem], failed: dict[str, list[int]]
    ) -> None:
        model_id = reader.model.model_id
        contexts = [self._contexts.pop((item.id, index), None) for item in batch]
        keys = [context_key(item.text, c) for item, c in zip(batch, contexts, strict=True)]
        unique = list(dict.fromkeys(keys))
        try:
            if reader.market is None:
                predictions = await self.classify(unique, model=reader.model)
            else:
                predictions = await self._classify_in_context(
                    reader.market, batch, contexts, keys, unique
                )
        except ModelUnavailable as error:
            self.failed_batches += 1
            log.error(
                "model unavailable: items kept for retry",
                error=str(error),
                items=len(batch),
                model=model_id,
            )
            for item in batch:
                failed.setdefault(item.id, []).append(index)
            return
        answers = dict(zip(unique, predictions, strict=True))
        self.cache.put_many(model_id, list(answers.items()))
        for item, key in zip(batch, keys, strict=True):
            self._emit_signals(item, answers[key], reader.weight)

    async def _classify_in_context(
        self,
        market: MarketInputs,
        batch: Sequence[NewsItem],
        contexts: Sequence[MarketContext | None],
        keys: Sequence[str],
        unique: Sequence[str],
    ) -> list[Prediction]:
        """The live path of a market-aware model: prepare the texts, then the cheap head."""
        first = {key: index for index, key in reversed(list(enumerate(keys)))}
        chosen = [first[key] for key in unique]
        texts = [batch[i].text for i in chosen]
        known = [contexts[i] or market.features.context(batch[i].received) for i in chosen]
        self.model_calls += 1
        try:
            await asyncio.wait_for(market.model.prepare(texts), self.timeout)
        except (TimeoutError, ConnectionError, OSError) as error:
            raise ModelUnavailable(str(error) or type(error).__name__) from error
        return market.model.classify_in_context(texts, known)

    def retry_pending(self, items: Iterable[NewsItem]) -> int:
        """Re-queue stored items the model has not answered (after a failure or a restart)."""
        count = 0
        for item in items:
            if item.id not in self._in_flight:
                self.on_news(item)
                count += 1
        return count
