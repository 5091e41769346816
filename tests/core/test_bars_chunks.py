"""The bars CSV's chunked path (`_clean_chunk`) gives what the row-by-row path gives: the same
bars, or the same error naming the same lines, whatever row of a chunk is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import adapters.files.bars as bars_module
from adapters.files import iter_bars

START = datetime(2024, 1, 1)
STEP = timedelta(minutes=1)


def _row(i: int, stamp: str = "", price: float = 0.0) -> list[str]:
    base = price or 100 + (i % 37) * 0.5
    when = stamp or (START + STEP * i).isoformat()
    return [when, f"{base:.1f}", f"{base + 1:.1f}", f"{base - 1:.1f}", f"{base + 0.5:.1f}", "12.5"]


def _write(path: Path, rows: list[list[str]]) -> Path:
    lines = ["timestamp,open,high,low,close,volume", *(",".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _read(path: Path, *, chunked: bool, skip: bool = False) -> list[object] | str:
    """The bars, or the error's type and text."""
    saved = bars_module._clean_chunk, bars_module._plain_rows
    if not chunked:  # the reference: the csv module reads every line, and row by row
        bars_module._clean_chunk = lambda *args: None
        bars_module._plain_rows = lambda lines: None
    try:
        return list(iter_bars(path, "BTCUSDT", skip_bad_rows=skip))
    except Exception as error:  # compared, not swallowed: both paths must fail alike
        return f"{type(error).__name__}: {error}"
    finally:
        bars_module._clean_chunk, bars_module._plain_rows = saved


def _same_both_ways(path: Path, skip: bool = False) -> list[object] | str:
    chunked = _read(path, chunked=True, skip=skip)
    assert chunked == _read(path, chunked=False, skip=skip)
    return chunked


N = bars_module.HEAD + 3 * bars_module.CHUNK + 17  # several whole chunks and a short last one
BAD = bars_module.HEAD + bars_module.CHUNK + 100  # a row in the middle of the second chunk


def _with(change: str) -> list[list[str]]:
    rows = [_row(i) for i in range(N)]
    row = rows[BAD]
    if change == "nan":
        row[4] = "NaN"
    elif change == "high below low":
        row[2], row[3] = row[3], row[2]
    elif change == "short row":
        del row[5]
    elif change == "repeated time":
        row[0] = rows[BAD - 1][0]
    elif change == "repeated time at a chunk's start":
        first = bars_module.HEAD + bars_module.CHUNK
        rows[first][0] = rows[first - 1][0]
        return rows
    elif change == "another offset, same instant":
        row[0] = (START + STEP * BAD + timedelta(hours=2)).isoformat() + "+02:00"
    elif change == "text price":
        row[1] = "abc"
    elif change == "blank line":
        rows[BAD] = []
    elif change == "zero volume":
        row[5] = "0"
    elif change == "quoted price":  # the csv module reads the rest of the file from here
        row[1] = f'"{row[1]}"'
    elif change == "quoted line break":  # one row on two lines: the line numbers after it shift
        row[5] = '"12.5\n"'
    elif change == "quoted line break at a chunk's end":  # the row's end is in the next chunk
        rows[bars_module.HEAD + bars_module.CHUNK - 1][5] = '"12.5\n"'
    elif change == "CRLF ending":
        row[5] += "\r"
    elif change == "NUL":
        row[4] += "\0"
    return rows


@pytest.mark.parametrize(
    "change",
    ["none", "nan", "high below low", "short row", "repeated time",
     "repeated time at a chunk's start", "another offset, same instant", "text price",
     "blank line", "zero volume", "quoted price", "quoted line break",
     "quoted line break at a chunk's end", "CRLF ending", "NUL"],
)  # fmt: skip
def test_a_row_wrong_inside_a_chunk_reads_as_it_does_row_by_row(
    change: str, tmp_path: Path
) -> None:
    path = _write(tmp_path / "bars.csv", _with(change))
    result = _same_both_ways(path)
    if change in ("none", "another offset, same instant", "zero volume", "blank line",
                  "quoted price", "quoted line break", "quoted line break at a chunk's end",
                  "CRLF ending"):  # fmt: skip
        assert isinstance(result, list) and len(result) == N - (change == "blank line")
    else:
        line = bars_module.HEAD + bars_module.CHUNK + 2 if "chunk" in change else BAD + 2
        assert isinstance(result, str) and f"bars.csv:{line}: " in result
    skipped = _same_both_ways(path, skip=True)
    assert isinstance(skipped, list) and len(skipped) >= N - 1


def test_utc_times_with_their_offset_and_epoch_times_read_alike(tmp_path: Path) -> None:
    aware = [_row(i, (START + STEP * i).isoformat() + "Z") for i in range(N)]
    result = _same_both_ways(_write(tmp_path / "z.csv", aware))
    assert isinstance(result, list) and len(result) == N
    assert result[-1].ts_open == (START + STEP * (N - 1)).replace(tzinfo=UTC)  # type: ignore[attr-defined]
    epoch = [
        _row(i, str(int((START + STEP * i).replace(tzinfo=UTC).timestamp()))) for i in range(N)
    ]
    assert _same_both_ways(_write(tmp_path / "epoch.csv", epoch)) == result


CORRUPTIONS = st.sampled_from(
    ["nan", "high below low", "short row", "repeated time", "text price", "blank line", "inf",
     "zero low", "Z time", "offset time", "earlier time", "quoted", "quoted break", "CRLF",
     "lone CR", "NUL", "long field"]
)  # fmt: skip


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    n=st.integers(min_value=1, max_value=70),
    bad=st.lists(st.tuples(st.integers(min_value=0, max_value=69), CORRUPTIONS), max_size=4),
    skip=st.booleans(),
)
def test_any_rows_read_the_same_chunked_or_row_by_row(
    n: int, bad: list[tuple[int, str]], skip: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bars_module, "HEAD", 3)
    monkeypatch.setattr(bars_module, "CHUNK", 5)
    rows = [_row(i) for i in range(n)]
    for at, kind in bad:
        if at >= n:
            continue
        row = rows[at]
        if not row:
            continue
        when = START + STEP * at
        match kind:
            case "nan":
                row[3] = "NaN"
            case "high below low":
                row[2], row[3] = row[3], row[2]
            case "short row":
                row.pop()
            case "repeated time" if at:
                row[0] = rows[at - 1][0] if rows[at - 1] else row[0]
            case "text price":
                row[4] = "x"
            case "blank line":
                rows[at] = []
            case "inf":
                row[2] = "inf"
            case "zero low":
                row[3] = "0"
            case "Z time":
                row[0] = when.isoformat() + "Z"
            case "offset time":
                row[0] = (when + timedelta(hours=1)).isoformat() + "+01:00"
            case "earlier time":
                row[0] = (when - STEP * 3).isoformat()
            case "quoted":
                row[2] = f'"{row[2]}"'
            case "quoted break":
                row[5] = '"12.5\n"'
            case "CRLF":
                row[5] += "\r"
            case "lone CR":
                row[5] = row[5][:1] + "\r" + row[5][1:]
            case "NUL":
                row[1] += "\0"
            case "long field":  # the csv module refuses a field over its limit
                row[5] = "1" * 200_000
    _same_both_ways(_write(tmp_path / "bars.csv", rows), skip=skip)


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_plain_lines_are_split_without_the_csv_module(
    ending: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is taken, not merely correct: in a clean file, LF or CRLF, only the chunk
    that learns the file's times are naive (UTC) goes through the csv module."""
    through_csv: list[int] = []
    csv_lines = bars_module._csv_lines

    def counted(lines: list[str], *args: object) -> list[list[str]]:
        through_csv.append(len(lines))
        return csv_lines(lines, *args)  # type: ignore[arg-type]

    def refuse(*args: object) -> None:
        raise AssertionError("a plain file was handed to the csv module for good")

    monkeypatch.setattr(bars_module, "_csv_lines", counted)
    monkeypatch.setattr(bars_module, "_csv_chunks", refuse)
    rows = [_row(i) for i in range(N)]
    lines = ["timestamp,open,high,low,close,volume", *(",".join(r) for r in rows)]
    path = tmp_path / "bars.csv"
    path.write_bytes((ending.join(lines) + ending).encode())
    bars = list(iter_bars(path, "BTCUSDT"))
    assert len(bars) == N and bars[-1].close == Decimal(rows[-1][4])
    assert through_csv == [bars_module.CHUNK]  # of N - HEAD = 3 chunks and 17 rows
