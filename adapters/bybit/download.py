"""Historical klines from /v5/market/kline into the backtester's canonical bars CSV.

The file is `timestamp,open,high,low,close,volume`, one row per bar, `timestamp` the bar's OPEN
time in ISO-8601 UTC (`2024-01-01T00:00:00Z`), ascending, without duplicates. Only closed bars
are written (Bybit includes the bar still forming; it is left out until it closes).

Downloads page forward 1000 bars at a time at `[bybit] download_rate` requests a second and
append each page as it arrives, so an interrupted download resumes from the last complete row
(a half-written last line is cut off first) and never repeats or skips a bar. Bybit's rate limit
answers (10006, HTTP 403) are waited out by the REST client.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from adapters.bybit import intervals
from adapters.bybit.endpoints import endpoints
from adapters.bybit.errors import BybitError
from adapters.bybit.rest import BybitRest
from bot.clock import Clock
from bot.config import Settings
from bot.errors import InputError, UserError
from bot.events import Bar, iso, parse_time
from bot.log import get_logger

log = get_logger(__name__)

HEADER = "timestamp,open,high,low,close,volume"
PAGE = 1000
LOG_EVERY = 5
"""Pages between two progress log lines when there is no progress bar (not a terminal)."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    written: int
    first: datetime | None
    last: datetime | None
    resumed_after: datetime | None
    requests: int
    empty_ranges: int


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _row(bar: Bar) -> str:
    def text(value: Decimal) -> str:
        return format(value, "f")

    return (
        f"{iso(bar.ts_open)},{text(bar.open)},{text(bar.high)},{text(bar.low)},"
        f"{text(bar.close)},{text(bar.volume)}\n"
    )


def resume_point(path: Path, interval: str) -> tuple[datetime | None, datetime | None]:
    """(first, last) open times already in `path`; cuts a half-written last line off first."""
    if not path.exists() or path.stat().st_size == 0:
        return None, None
    with path.open("rb+") as handle:
        data = handle.read()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            handle.truncate(cut)
            data = data[:cut]
            log.warning("download: removed a half-written last line", path=str(path))
    lines = data.decode("utf-8").splitlines()
    if not lines:
        return None, None
    if lines[0].strip() != HEADER:
        raise InputError(
            f"{path}:1: not a bars CSV (expected the header {HEADER!r}); choose another --out"
        )
    rows = [line for line in lines[1:] if line.strip()]
    if not rows:
        return None, None

    def stamp(index: int) -> datetime:
        line_no = len(lines) - len(rows) + (index % len(rows)) + 1
        try:
            return parse_time(rows[index].split(",", 1)[0])
        except ValueError:
            raise InputError(f"{path}:{line_no}: unreadable timestamp {rows[index]!r}") from None

    first, last = stamp(0), stamp(-1)
    if len(rows) >= 2:
        before = stamp(-2)
        expected = intervals.next_open_ms(interval, _ms(before))
        if expected != _ms(last):
            raise InputError(
                f"{path}:{len(lines)}: the last two bars are not one {interval} interval apart; "
                "the file holds another interval or has a gap: choose another --out"
            )
    return first, last


async def download_klines(
    settings: Settings,
    symbol: str,
    interval: str,
    start: datetime,
    end: datetime,
    out: Path,
    *,
    category: str | None = None,
    progress: bool = True,
    log_every: int = 0,
    clock: Clock,
) -> DownloadResult:
    """Download [start, end) into `out`, resuming if it already holds earlier bars.

    `clock` says when "now" is where Bybit's answer does not (a bar closing after it is still
    forming and is not written). `progress` shows a bar (a terminal); `log_every` pages, where
    no bar is shown, one `download progress` log line says how far it got (a pipe, a cron job, a
    CI log would otherwise see nothing until the end)."""
    interval = intervals.normalise(interval)
    category = category or settings.bybit.category
    symbol = symbol.upper()
    if end <= start:
        raise UserError(f"--to ({iso(end)}) must be after --from ({iso(start)})")
    start_ms = intervals.open_ms(interval, _ms(start))
    if start_ms < _ms(start):
        start_ms = intervals.next_open_ms(interval, start_ms)
    end_ms = _ms(end)
    out.parent.mkdir(parents=True, exist_ok=True)
    first, last = resume_point(out, interval)
    if first is not None and _ms(first) > start_ms:
        raise UserError(
            f"{out} starts at {iso(first)}, after --from {iso(start)}: it cannot be extended "
            "backwards; delete it or choose another --out"
        )
    cursor = intervals.next_open_ms(interval, _ms(last)) if last is not None else start_ms
    resumed_after = last
    step = intervals.fixed_ms(interval) or 31 * 86_400_000
    expected = max(0, (end_ms - cursor + step - 1) // step)
    config = settings.bybit.model_copy(update={"rest_retries": max(settings.bybit.rest_retries, 6)})
    written = 0
    requests = 0
    empty = 0
    first_written: datetime | None = None
    last_written = last
    pace = 1.0 / settings.bybit.download_rate
    bar_progress = _progress(expected, symbol, interval, progress)
    try:
        async with BybitRest(config, endpoints(settings).rest, clock) as rest:
            next_request = 0.0
            with out.open("a", encoding="utf-8", newline="") as handle:
                if out.stat().st_size == 0:
                    handle.write(HEADER + "\n")
                while cursor < end_ms:
                    wait = next_request - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                    next_request = time.monotonic() + pace
                    page_end = min(end_ms - 1, cursor + step * PAGE - 1)
                    try:
                        bars, venue_ms = await rest.kline_page(
                            category, symbol, interval, cursor, page_end, PAGE
                        )
                    except BybitError as error:
                        raise UserError(
                            f"download of {symbol} {interval} stopped at {_iso_ms(cursor)}: "
                            f"{error} (run the same command again to resume)"
                        ) from None
                    requests += 1
                    now_ms = venue_ms or _ms(clock.now())
                    rows = []
                    for bar in bars:
                        open_ms = _ms(bar.ts_open)
                        if open_ms < cursor or open_ms > page_end or _ms(bar.ts) > now_ms:
                            continue
                        if last_written is not None and open_ms <= _ms(last_written):
                            continue
                        rows.append(_row(bar))
                        last_written = bar.ts_open
                        first_written = first_written or bar.ts_open
                    if rows:
                        handle.write("".join(rows))
                        handle.flush()
                        os.fsync(handle.fileno())
                        written += len(rows)
                    else:
                        empty += 1
                    bar_progress.update(max(len(rows), 0))
                    if log_every and requests % log_every == 0:
                        log.info(
                            "download progress",
                            symbol=symbol,
                            interval=interval,
                            pages=requests,
                            written=written,
                            expected=expected,
                            through=iso(last_written) if last_written else None,
                        )
                    if page_end + 1 > now_ms:
                        break  # reached the bar still forming
                    cursor = page_end + 1
    finally:
        bar_progress.close()
    return DownloadResult(
        out, written, first_written or first, last_written, resumed_after, requests, empty
    )


def _iso_ms(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, UTC))


class _Progress(Protocol):
    def update(self, n: int) -> object: ...

    def close(self) -> None: ...


class _NoProgress:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress(total: int, symbol: str, interval: str, enabled: bool) -> _Progress:
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    bar: _Progress = tqdm(
        total=total, unit="bar", desc=f"{symbol} {interval}", leave=False, dynamic_ncols=True
    )
    return bar
