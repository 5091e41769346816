"""Property: whatever bytes or numbers a bars or news file holds, reading it gives bars or news,
or one `InputError` line; never another exception (issue 11, the fuzzing acceptance point)."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.files import iter_bars, read_news
from bot.errors import UserError

pytestmark = pytest.mark.slow

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)

NUMBER_WORDS = [
    "inf",
    "-inf",
    "Infinity",
    "NaN",
    "sNaN",
    "1e400",
    "1e99999999",
    "-0",
    "1e-400",
    "0x10",
    "1_0",
]
numbers = st.one_of(
    st.sampled_from(NUMBER_WORDS),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(alphabet="0123456789.eE+-", max_size=12),
)
stamps = st.one_of(
    st.datetimes().map(lambda t: t.isoformat()),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00", "2024-01-01T00:00:00-23:59"]),
    st.text(max_size=20),
)


def outcome(write: Callable[[Path], None], read: Callable[[Path], object], suffix: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"input{suffix}"
        write(path)
        try:
            read(path)
        except UserError as error:
            assert "\n" not in str(error), error
            assert str(path) in str(error), error


def bars_of(path: Path) -> list[object]:
    return list(iter_bars(path, "BTCUSDT"))


@FUZZ
@given(data=st.binary(max_size=600), suffix=st.sampled_from([".csv", ".json", ".jsonl"]))
def test_random_bytes_as_bars(data: bytes, suffix: str) -> None:
    outcome(lambda p: p.write_bytes(data), bars_of, suffix)


@FUZZ
@given(
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"timestamp,open,high,low,close,volume\n"]),
    data=st.binary(max_size=600),
    suffix=st.sampled_from([".csv", ".jsonl"]),
)
def test_random_bytes_as_news(prefix: bytes, data: bytes, suffix: str) -> None:
    outcome(lambda p: p.write_bytes(prefix + data), read_news, suffix)


@FUZZ
@given(
    table=st.lists(st.tuples(stamps, numbers, numbers, numbers, numbers, numbers), max_size=8),
    good=st.integers(min_value=0, max_value=3),
)
def test_random_numbers_in_bar_rows(
    table: list[tuple[str, str, str, str, str, str]], good: int
) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"2024-01-01T00:{15 * i:02d}:00Z,100,110,90,105,1" for i in range(good)]
    lines += [",".join(row) for row in table]
    outcome(lambda p: p.write_text("\n".join(lines) + "\n", encoding="utf-8"), bars_of, ".csv")


@FUZZ
@given(table=st.lists(st.tuples(stamps, *[numbers] * 5), min_size=1, max_size=8))
def test_random_numbers_in_json_bars(table: list[tuple[str, ...]]) -> None:
    import json

    text = json.dumps([[stamp, *values] for stamp, *values in table])
    outcome(lambda p: p.write_text(text, encoding="utf-8"), bars_of, ".json")


@FUZZ
@given(
    received=st.one_of(stamps, numbers, st.none(), st.integers(), st.floats()),
    title=st.text(max_size=30),
)
def test_random_news_fields(received: object, title: str) -> None:
    import json

    line = json.dumps({"id": "x", "title": title, "received": received})
    csv_text = f"timestamp,source,title\n{received},s,{title.replace(chr(10), ' ')}\n"
    outcome(lambda p: p.write_text(line + "\n", encoding="utf-8"), read_news, ".jsonl")
    outcome(
        lambda p: p.write_text(csv_text, encoding="utf-8", errors="surrogatepass"),
        read_news,
        ".csv",
    )
