"""Does the news move the price? The event study behind `lorabot analyze`.

Each signal is aligned with the first bar opening at or after its `received` time, the bar a
fill would use, so nothing can see the future. For every horizon h (a whole number of bars):

- forward return: log(open h after the entry bar) - log(entry bar's open); a window that crosses
  a gap in the bars, or runs past their end, is missing (counted, never interpolated);
- abnormal return: the forward return less the drift, the mean h-forward return of every bar
  whose whole window lay in the 30 days before the item (past-only, so impact labels built from
  it do not leak);
- pre-event return: the return over the same span before the entry bar (reactive headlines,
  "Bitcoin spikes to $20K", are bullish in words and report the past).

Statistics are per group (label; label x confidence bucket; source x label; scope x label, where
scope is `tagged` for items about the symbol and `market` for market-wide ones), after merging
near-identical headlines (the first of a group is kept; `n_raw` counts the copies). Forward
windows overlap and headlines cluster, so intervals come from a stationary block bootstrap over
calendar days (seeded), p-values from the bootstrap standard error, and Holm's correction runs
over every group, horizon and information coefficient tested for the symbol.

`analyze` returns the `analysis.json` document:

    {horizons, options, counts, warnings, summary,
     label.<bearish|neutral|bullish>.<h> = {n, n_raw, merged, mean_bps, mean_abnormal_bps,
        ci_low_bps, ci_high_bps, hit_rate, p_value, p_value_holm, pre_event_bps},
     label_confidence.<label>.<bucket>.<h>, source.<source>.<label>.<h>,
     scope.<tagged|market>.<label>.<h>   (the same fields),
     ic.<h> = {n, spearman, ci_low, ci_high, p_value, p_value_holm},
     event_path.<label> = {offset_hours, mean_bps, ci_low_bps, ci_high_bps, n},
     symbols.<SYMBOL> = the same document for every symbol}

with the first symbol's document at the top level. Returns are in basis points of log return;
the interval is the abnormal mean's; `hit_rate` is the share of items whose forward return has the
sign of their score p_bullish - p_bearish (items scoring exactly 0 predict no direction and are
left out of it). A figure that cannot be computed (fewer than two items)
is null.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from bot.research.bootstrap import bootstrap_p_value, percentile_interval, stationary_weights
from bot.research.dedupe import merged_mask
from bot.research.event_path import abnormal_paths
from bot.research.multiple import holm
from bot.research.rank_ic import resampled_spearman, spearman
from bot.research.signals import LABELS, MARKET_WIDE, SignalArrays
from bot.research.timeline import (
    DAY,
    Bars,
    forward_returns,
    log_return_between,
    parse_horizon,
    past_mean,
    spell,
)

BPS = 1e4
SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class StudyOptions:
    """Every knob of the study; recorded in analysis.json so a number can be reproduced."""

    horizons: tuple[str, ...] = ("1h", "4h", "1d")
    draws: int = 1000
    seed: int = 0
    block_days: float = 5.0
    level: float = 0.95
    confidence_edges: tuple[float, ...] = (0.0, 0.5, 0.7, 0.9, 1.0)
    dedupe_window_s: int = DAY
    drift_lookback_s: int = 30 * DAY
    path_span_s: int = DAY
    min_items: int = 2


def analyze(
    signals: SignalArrays, bars: Mapping[str, Bars], options: StudyOptions | None = None
) -> dict[str, object]:
    """The analysis.json document (see the module text) for every symbol's bars."""
    chosen = options or StudyOptions()
    if not bars:
        raise ValueError("analyze: no bars given")
    horizons = [(name, parse_horizon(name)) for name in chosen.horizons]
    if not horizons:
        raise ValueError("analyze: no horizons given")
    for symbol, symbol_bars in bars.items():
        for name, seconds in horizons:
            try:
                symbol_bars.check_horizon(name, seconds)
            except ValueError as error:
                raise ValueError(f"{symbol}: {error}") from None
    per_symbol = {
        symbol: _study(signals, symbol, symbol_bars, horizons, chosen)
        for symbol, symbol_bars in bars.items()
    }
    document = dict(next(iter(per_symbol.values())))
    document["symbols"] = per_symbol
    return document


@dataclass
class _Group:
    path: tuple[str, ...]
    mask: np.ndarray


@dataclass
class _Horizon:
    forward: np.ndarray
    abnormal: np.ndarray
    pre: np.ndarray
    missing: dict[str, int]


def _study(
    all_signals: SignalArrays,
    symbol: str,
    bars: Bars,
    horizons: Sequence[tuple[str, int]],
    options: StudyOptions,
) -> dict[str, object]:
    """One symbol's document: its own signals and the market-wide ones, against its bars."""
    relevant = all_signals.take(
        (all_signals.symbol == symbol) | (all_signals.symbol == MARKET_WIDE)
    )
    first, last = int(bars.open_time[0]), int(bars.open_time[-1])
    before = relevant.received < first
    after = relevant.received > last
    signals = relevant.take(~before & ~after)
    entry = bars.entry_index(signals.received)
    entry_time = bars.open_time[entry]
    merged = merged_mask(list(signals.key), signals.received, options.dedupe_window_s)
    kept = ~merged
    day = signals.received // DAY
    day_index = day - (day.min() if day.size else 0)
    n_days = int(day_index.max()) + 1 if day.size else 0
    weights = stationary_weights(
        n_days, options.draws, options.block_days, np.random.default_rng(options.seed)
    )
    missing: dict[str, dict[str, int]] = {}
    counts: dict[str, object] = {
        "signals": len(relevant),
        "before_bars": int(before.sum()),
        "after_bars": int(after.sum()),
        "studied": len(signals),
        "merged_duplicates": int(merged.sum()),
        "aligned_after_gap": int(np.count_nonzero(entry_time - signals.received >= bars.interval)),
        "bar_gaps": bars.n_gaps,
        "missing": missing,
    }
    warnings = _span_warnings(counts, bars, horizons)
    groups = list(_groups(signals, options.confidence_edges))
    tables: dict[str, dict[tuple[str, ...], dict[str, float | int | None]]] = {}
    ic: dict[str, dict[str, float | int | None]] = {}
    for name, seconds in horizons:
        horizon = _returns(bars, seconds, entry, entry_time, signals, options)
        missing[name] = horizon.missing
        tables[name] = _group_stats(
            horizon, groups, signals.score, kept, day_index, weights, options
        )
        ic[name] = _information(signals.score, horizon.forward, kept, day_index, weights, options)
    _apply_holm(tables, ic)
    document: dict[str, object] = {
        "symbol": symbol,
        "horizons": [name for name, _ in horizons],
        "options": _options_record(options),
        "counts": counts,
        "warnings": warnings,
    }
    for group in groups:
        for name, _ in horizons:
            _nest(document, [*group.path, name], tables[name][group.path])
    document["ic"] = ic
    document["event_path"] = _paths(bars, signals, entry_time, kept, day_index, weights, options)
    document["summary"] = _summary(symbol, document, [name for name, _ in horizons])
    return document


def _returns(
    bars: Bars,
    seconds: int,
    entry: np.ndarray,
    entry_time: np.ndarray,
    signals: SignalArrays,
    options: StudyOptions,
) -> _Horizon:
    every_bar = forward_returns(bars, seconds)
    forward = every_bar.values[entry]
    drift = past_mean(bars, every_bar, seconds, signals.received, options.drift_lookback_s)
    pre = log_return_between(bars, entry_time - seconds, entry_time)
    missing = {
        "gap": int(every_bar.gap[entry].sum()),
        "beyond_end": int(every_bar.beyond_end[entry].sum()),
        "no_drift_history": int(np.count_nonzero(np.isfinite(forward) & ~np.isfinite(drift))),
        "pre_event": int(np.count_nonzero(~np.isfinite(pre))),
    }
    return _Horizon(forward=forward, abnormal=forward - drift, pre=pre, missing=missing)


def _groups(signals: SignalArrays, edges: Sequence[float]) -> Iterator[_Group]:
    confidence = signals.confidence
    tagged = signals.symbol != MARKET_WIDE
    for code, label in enumerate(LABELS):
        is_label = signals.label == code
        yield _Group(("label", label), is_label)
        for low, high in itertools.pairwise(edges):
            inside = (confidence > low) & (confidence <= high) if low > 0 else confidence <= high
            yield _Group(("label_confidence", label, f"{low:.2f}-{high:.2f}"), is_label & inside)
        for source in sorted(set(signals.source.tolist())):
            yield _Group(("source", source, label), is_label & (signals.source == source))
        yield _Group(("scope", "tagged", label), is_label & tagged)
        yield _Group(("scope", "market", label), is_label & ~tagged)


def _group_stats(
    horizon: _Horizon,
    groups: Sequence[_Group],
    score: np.ndarray,
    kept: np.ndarray,
    day_index: np.ndarray,
    weights: np.ndarray,
    options: StudyOptions,
) -> dict[tuple[str, ...], dict[str, float | int | None]]:
    """Every group's figures at one horizon; the bootstrap of all groups is one matrix product."""
    finite = np.isfinite(horizon.abnormal)
    n_days = weights.shape[1]
    sums = np.zeros((n_days, len(groups)))
    sizes = np.zeros((n_days, len(groups)))
    uses = []
    for column, group in enumerate(groups):
        use = group.mask & finite & kept
        uses.append(use)
        sums[:, column] = np.bincount(day_index[use], horizon.abnormal[use], minlength=n_days)
        sizes[:, column] = np.bincount(day_index[use], minlength=n_days)
    with np.errstate(invalid="ignore", divide="ignore"):
        resampled = (weights @ sums) / (weights @ sizes)
    hits = np.sign(horizon.forward) * np.sign(score) > 0
    directional = score != 0
    table: dict[tuple[str, ...], dict[str, float | int | None]] = {}
    for column, group in enumerate(groups):
        use = uses[column]
        n = int(use.sum())
        n_raw = int(np.count_nonzero(group.mask & finite))
        entry: dict[str, float | int | None] = {"n": n, "n_raw": n_raw, "merged": n_raw - n}
        entry |= dict.fromkeys(FIGURES, None)
        if n >= options.min_items:
            mean = float(horizon.abnormal[use].mean())
            low, high = percentile_interval(resampled[:, column], options.level)
            entry |= {
                "mean_bps": float(horizon.forward[use].mean()) * BPS,
                "mean_abnormal_bps": mean * BPS,
                "ci_low_bps": low * BPS,
                "ci_high_bps": high * BPS,
                "hit_rate": _share(hits[use & directional], int(np.sum(use & directional))),
                "p_value": bootstrap_p_value(mean, resampled[:, column]),
                "pre_event_bps": _mean_or_nan(horizon.pre[use]) * BPS,
            }
        table[group.path] = {key: _number(value) for key, value in entry.items()}
    return table


# the numbers of one label x horizon entry of analysis.json, besides its counts
FIGURES = (
    "mean_bps",
    "mean_abnormal_bps",
    "ci_low_bps",
    "ci_high_bps",
    "hit_rate",
    "p_value",
    "p_value_holm",
    "pre_event_bps",
)


def _information(
    score: np.ndarray,
    forward: np.ndarray,
    kept: np.ndarray,
    day_index: np.ndarray,
    weights: np.ndarray,
    options: StudyOptions,
) -> dict[str, float | int | None]:
    """Spearman IC of the signed score against forward returns, with its day-block interval."""
    use = kept & np.isfinite(forward)
    n = int(use.sum())
    record: dict[str, float | int | None] = {"n": n}
    record |= dict.fromkeys(("spearman", "ci_low", "ci_high", "p_value", "p_value_holm"), None)
    if n < max(options.min_items, 3):
        return record
    x, y = score[use], forward[use]
    rho = spearman(x, y)
    draws = resampled_spearman(x, y, day_index[use], weights)
    low, high = percentile_interval(draws, options.level)
    record |= {
        "spearman": rho,
        "ci_low": low,
        "ci_high": high,
        "p_value": bootstrap_p_value(rho, draws),
    }
    return {key: _number(value) for key, value in record.items()}


def _apply_holm(
    tables: dict[str, dict[tuple[str, ...], dict[str, float | int | None]]],
    ic: dict[str, dict[str, float | int | None]],
) -> None:
    """Holm over every group x horizon and every IC tested for the symbol, written in place."""
    records = [entry for table in tables.values() for entry in table.values()]
    records += list(ic.values())
    raw = np.array(
        [np.nan if r["p_value"] is None else float(r["p_value"]) for r in records], dtype=float
    )
    for record, adjusted in zip(records, holm(raw), strict=True):
        record["p_value_holm"] = _number(float(adjusted))


def _paths(
    bars: Bars,
    signals: SignalArrays,
    entry_time: np.ndarray,
    kept: np.ndarray,
    day_index: np.ndarray,
    weights: np.ndarray,
    options: StudyOptions,
) -> dict[str, dict[str, list[float | None]]]:
    grid, paths = abnormal_paths(
        bars, entry_time, signals.received, options.path_span_s, options.drift_lookback_s
    )
    n_days = weights.shape[1]
    out: dict[str, dict[str, list[float | None]]] = {}
    for code, label in enumerate(LABELS):
        rows = paths[kept & (signals.label == code)]
        days = day_index[kept & (signals.label == code)]
        finite = np.isfinite(rows)
        sums = np.zeros((n_days, grid.size))
        sizes = np.zeros((n_days, grid.size))
        np.add.at(sums, days, np.where(finite, rows, 0.0))
        np.add.at(sizes, days, finite.astype(float))
        with np.errstate(invalid="ignore", divide="ignore"):
            resampled = (weights @ sums) / (weights @ sizes)
            means = sums.sum(axis=0) / sizes.sum(axis=0)
        bands = [
            percentile_interval(resampled[:, column], options.level) for column in range(grid.size)
        ]
        out[label] = {
            "offset_hours": [float(offset) / 3600.0 for offset in grid],
            "mean_bps": [_number(float(value) * BPS) for value in means],
            "ci_low_bps": [_number(low * BPS) for low, _ in bands],
            "ci_high_bps": [_number(high * BPS) for _, high in bands],
            "n": [float(count) for count in sizes.sum(axis=0)],
        }
    return out


def _summary(symbol: str, document: Mapping[str, object], horizons: Sequence[str]) -> str:
    """One sentence: is any label's abnormal return at any horizon distinguishable from zero?"""
    found = []
    labels = document.get("label")
    assert isinstance(labels, dict)
    for label in LABELS:
        for name in horizons:
            entry = labels[label][name]
            p = entry["p_value_holm"]
            if p is not None and p < SIGNIFICANCE:
                found.append(
                    f"{label} at {name} ({entry['mean_abnormal_bps']:+.1f} bps, 95% CI "
                    f"{entry['ci_low_bps']:+.1f} to {entry['ci_high_bps']:+.1f}, Holm p {p:.3f})"
                )
    if found:
        return (
            f"{symbol}: distinguishable from zero at the 5% level after Holm's correction: "
            + "; ".join(found)
            + "."
        )
    return (
        f"{symbol}: no label's abnormal return at any horizon is distinguishable from zero at "
        "the 5% level after Holm's correction."
    )


def _span_warnings(
    counts: Mapping[str, object], bars: Bars, horizons: Sequence[tuple[str, int]]
) -> list[str]:
    warnings = []
    if counts["before_bars"] or counts["after_bars"]:
        warnings.append(
            f"{counts['before_bars']} signals before the first bar and {counts['after_bars']} "
            "after the last were not studied"
        )
    span = int(bars.open_time[-1] - bars.open_time[0])
    for name, seconds in horizons:
        if seconds > span:
            warnings.append(
                f"horizon {name} is longer than the bars' span {spell(span)}: "
                "every forward return is missing"
            )
    if bars.n_gaps:
        warnings.append(
            f"the bars have {bars.n_gaps} gaps: windows across them are missing, not interpolated"
        )
    return warnings


def _options_record(options: StudyOptions) -> dict[str, object]:
    record = asdict(options)
    record["horizons"] = list(options.horizons)
    record["confidence_edges"] = list(options.confidence_edges)
    return record


def _nest(document: dict[str, object], path: Sequence[str], value: object) -> None:
    node = document
    for key in path[:-1]:
        child = node.setdefault(key, {})
        assert isinstance(child, dict)
        node = child
    node[path[-1]] = value


def _share(flags: np.ndarray, n: int) -> float | None:
    return float(flags.sum() / n) if n else None


def _mean_or_nan(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def _number(value: float | int | None) -> float | int | None:
    """JSON has no NaN: an undefined figure is null."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
