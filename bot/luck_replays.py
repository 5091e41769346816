"""The backtest's extra replays: the lag test and the null models, none of which asks the model.

A result that vanishes when every decision comes one bar later was living on a timing that a
live bot would not get; a Sharpe that label permutations reach as often as not is not evidence
of anything. Both questions are answered by replaying the same run again through the one driver
(`bot.replay.replay_in_memory`), keeping nothing (no store, no decision records), on the bars
the backtest parsed (held in memory up to `IN_MEMORY_BARS`):

- lag: the same news released `delay` later (each item's `received` moved), read from the same
  signal cache, so the model answers nothing new;
- nulls: the real answers, one per distinct text, permuted among the texts (or drawn as coin
  flips at the real label rates), handed to the driver directly as its signal source.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import statistics
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import numpy as np

from bot.config import Settings
from bot.events import Bar, Label, NewsItem
from bot.funding import FundingSchedule
from bot.protocols import Prediction, SentimentModel
from bot.recording import Recording
from bot.replay import TrialResult, replay_in_memory
from bot.research.nulls import NullLabels
from bot.signals import SignalCache, normalise
from bot.symbols import SymbolTable

#: More than this share of the Sharpe gone one bar later earns a warning.
LAG_WARNING_SHARE = 0.5


#: Bars kept in memory for the extra replays (about 0.75 kB each); a run with more is read
#: from its file again for each replay, so that memory stays bounded however long the file.
IN_MEMORY_BARS = 100_000


class BarKeeper:
    """Keeps the bars the backtest's own replay releases within [start, end], so the extra
    replays need not parse the file again; gives up beyond `limit` bars."""

    def __init__(
        self, start: datetime | None, end: datetime | None, limit: int = IN_MEMORY_BARS
    ) -> None:
        self.start, self.end, self.limit = start, end, limit
        self.kept: list[Bar] | None = None  # None until watching, and after giving up

    def watch(self, bars: Iterable[Bar]) -> Iterator[Bar]:
        """`bars`, passed through unchanged, keeping those within the window."""
        start, end = self.start, self.end
        self.kept = []
        for bar in bars:
            kept = self.kept
            ts = bar.ts
            if kept is not None and (start is None or ts >= start) and (end is None or ts <= end):
                kept.append(bar)
                if len(kept) > self.limit:
                    self.kept = None
            yield bar

    def replayable(self, again: Callable[[], Iterable[Bar]]) -> Callable[[], Iterable[Bar]]:
        """The kept bars for each further replay, or `again` (the file read anew) if there
        were too many to keep."""
        kept = self.kept
        return again if kept is None else lambda: kept


@dataclass
class ReplayInputs:
    """Everything one more replay of a backtest needs (the parsed news, the bars or a way to
    read them again, the model whose answers are cached)."""

    settings: Settings
    news: Sequence[NewsItem]
    bars: Callable[[], Iterable[Bar]]  # the run's bars, each call (kept in memory, or re-read)
    symbol: str
    model: SentimentModel
    signals: SignalCache
    symbols: SymbolTable
    start: datetime | None = None
    end: datetime | None = None
    funding: FundingSchedule | None = None
    traded: Sequence[str] = ()  # a portfolio's symbols (`bars` merges theirs); (): `symbol`
    funded: Sequence[str] | None = None  # the symbols that pay funding; None: `symbol`

    def play(self, news: Sequence[NewsItem], signals: SignalCache) -> Recording:
        """One replay that keeps nothing (`bot.replay.replay_in_memory`); its recording."""
        return self.trial(news, signals).recording

    def sharpe(self, news: Sequence[NewsItem], signals: SignalCache) -> float:
        return self.trial(news, signals).sharpe

    def trial(self, news: Sequence[NewsItem], signals: SignalCache) -> TrialResult:
        return replay_in_memory(
            self.settings,
            bars=self.bars(),
            news=news,
            signals=signals,
            model=self.model,
            symbol=self.symbol,
            symbols=self.symbols,
            start=self.start,
            end=self.end,
            funding=self.funding,
            traded=self.traded or None,
            funded=self.funded,
        )


def bar_interval(recording: Recording) -> timedelta:
    """The bars' spacing: the median gap between the recorded bars' closes (gaps in the data do
    not move the median)."""
    stamps = recording.stamps
    if len(stamps) < 2:
        return timedelta(0)
    gaps = [b - a for a, b in itertools.pairwise(stamps[:1001])]
    return timedelta(microseconds=int(statistics.median(gaps)))


def delayed(news: Sequence[NewsItem], delay: timedelta) -> list[NewsItem]:
    """The same news, each item released `delay` later (its `received` moved, order kept)."""
    return [replace(item, received=item.received + delay) for item in news]


def lag_sharpe(inputs: ReplayInputs, delay: timedelta) -> float:
    """The run's Sharpe with every news item, hence every decision it causes, `delay` later."""
    return inputs.sharpe(delayed(inputs.news, delay), inputs.signals)


def lag_warning(sharpe: float, lagged: float, delay: timedelta) -> str | None:
    """One line when more than half of a positive Sharpe disappears with the delay."""
    if sharpe <= 0 or lagged >= sharpe * (1 - LAG_WARNING_SHARE):
        return None
    minutes = delay.total_seconds() / 60
    return (
        f"the Sharpe falls from {sharpe:.2f} to {lagged:.2f} when every decision comes "
        f"{minutes:g} min later: the result depends on acting within a bar of the news"
    )


@dataclass(frozen=True)
class Answers:
    """The run's model answers, one per news item, as arrays for the nulls.

    A null permutes labels among the signals, not among distinct texts (a headline repeated by
    ten sources is ten signals), so each item gets a text of its own for the null replays: a
    short title naming its position and no body. Nothing in a replay reads the words (the
    symbols were tagged when the file was read, the answer is given), and the signal service
    normalises and hashes each item's text once per replay: a short one costs next to nothing.
    """

    news: list[NewsItem]
    keys: list[str]
    label: np.ndarray
    probs: np.ndarray
    model_id: str
    # every real answer by (label, probabilities): a null draws its rows from these, so each
    # replay looks its answers up instead of building 7,500 new ones (a tenth of a replay)
    known: dict[tuple[int, float, float, float], Prediction] = field(default_factory=dict)

    @classmethod
    def of(cls, inputs: ReplayInputs) -> Answers:
        model_id = inputs.model.model_id
        played = [i for i in inputs.news if inputs.start is None or i.received >= inputs.start]
        found = inputs.signals.get_many(model_id, {normalise(i.text) for i in played})
        news, keys, rows = [], [], []
        for index, item in enumerate(played):
            answer = found.get(normalise(item.text))
            if answer is None:  # never classified: it plays as in the real run (no signal)
                continue
            unique = replace(item, title=f"null item {index}", body="")
            news.append(unique)
            keys.append(normalise(unique.text))
            rows.append((int(answer.label), answer.probs))
        label = np.asarray([r[0] for r in rows], dtype=np.int64)
        probs = np.asarray([r[1] for r in rows], dtype=float).reshape(-1, 3)
        answers = cls(news, keys, label, probs, model_id)
        for c, row in zip(label.tolist(), probs.tolist(), strict=True):
            answers.known[(c, *row)] = answers.prediction(c, row)
        return answers

    def prediction(self, c: int, row: list[float]) -> Prediction:
        return Prediction(Label(c), float(row[c]), (row[0], row[1], row[2]), self.model_id)

    def source(self, label: np.ndarray, probs: np.ndarray) -> SignalCache:
        """A signal source answering each item's own text with the given label and probabilities
        (the keys are normalised texts already)."""
        known, answers = self.known, []
        for key, c, row in zip(self.keys, label.tolist(), probs.tolist(), strict=True):
            answer = known.get((c, *row))
            answers.append((key, answer if answer is not None else self.prediction(c, row)))
        cache = SignalCache()
        cache.put_many(self.model_id, answers)
        return cache


def null_figures(
    inputs: ReplayInputs, real_sharpe: float, trials: int, seed: int = 0, workers: int = 0
) -> dict[str, float]:
    """`null_p_value`, `null_trials` and `coin_flip_p_value` for the run (see the module text).

    The 2N replays are independent, so they run on `workers` forked processes (0: one per CPU
    this process may use). `bot.research.nulls.null_figures` draws the label sets and computes
    the p-values; it is asked twice, first to collect the label sets (answering 0), then with
    the Sharpes the processes replayed, in the same order, so the result does not depend on how
    many processes ran.
    """
    from bot.research import nulls

    answers = Answers.of(inputs)
    drawn: list[nulls.NullLabels] = []

    def collect(labels: nulls.NullLabels) -> float:
        drawn.append(labels)
        return 0.0

    nulls.null_figures(real_sharpe, collect, answers.label, answers.probs, trials, seed)
    sharpes = iter(_replay_all(inputs, answers, drawn, workers))
    return nulls.null_figures(
        real_sharpe, lambda _: next(sharpes), answers.label, answers.probs, trials, seed
    )


_JOB: tuple[ReplayInputs, Answers, list[NullLabels]] | None = None  # what forked workers replay


def _null_sharpe(index: int) -> float:
    assert _JOB is not None
    inputs, answers, drawn = _JOB
    source = answers.source(drawn[index].label, drawn[index].probs)
    return inputs.sharpe(answers.news, source)


def _replay_all(
    inputs: ReplayInputs, answers: Answers, drawn: list[NullLabels], workers: int
) -> list[float]:
    """The Sharpe of each label set, in order: in this process, or on forked workers."""
    global _JOB
    workers = min(workers or len(os.sched_getaffinity(0)), len(drawn))
    _JOB = (inputs, answers, drawn)
    try:
        if workers <= 1 or "fork" not in multiprocessing.get_all_start_methods():
            return [_null_sharpe(i) for i in range(len(drawn))]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            return list(pool.map(_null_sharpe, range(len(drawn)), chunksize=1))
    finally:
        _JOB = None
