from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from adapters.files import iter_bars, read_news
from bot.config import Settings
from bot.errors import InputError
from bot.events import Bar, NewsItem
from bot.streams import merge
from bot.symbols import SymbolTable

from .helpers import T0, bar, news, settings

SYMBOLS = SymbolTable.from_settings(Settings())


def test_news_csv_released_in_order_and_tagged(fixtures: Path) -> None:
    items = read_news(fixtures / "core" / "news.csv", SYMBOLS)
    assert [i.title for i in items] == [
        "Fed holds rates, as expected",
        "Bitcoin surges as ETF inflows jump",
        "Ethereum upgrade delayed again",
    ]
    assert items[2].received == datetime(2024, 1, 1, 1, 10, tzinfo=UTC)  # +01:00 normalised
    assert items[1].symbols == ("BTCUSDT",) and items[2].symbols == ("ETHUSDT",)
    assert items[0].symbols == () and items[0].body == "Markets were calm."
    assert items[1].id == "https://example.test/a"


def test_news_jsonl_falls_back_to_published(fixtures: Path) -> None:
    items = read_news(fixtures / "core" / "news.jsonl", SYMBOLS)
    assert [i.id for i in items] == ["n2", "n1"]
    assert items[0].received == items[0].published


def test_news_round_trips_through_jsonl() -> None:
    item = NewsItem(
        "x",
        "s",
        "Title",
        T0,
        body="b",
        link="l",
        published=T0,
        symbols=("BTCUSDT",),
        stale=True,
        undated=False,
    )
    assert NewsItem.from_json(item.to_json()) == item


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            '{"id":"a","title":"t","received":"2024-01-01T00:00:00Z"}\n{"id":"b","title":\n',
            r"news.jsonl:2: not valid JSON",
        ),
        (
            '{"id":"a","source":"s","received":"2024-01-01T00:00:00Z"}\n',
            r"news.jsonl:1: bad news item: 'title'",
        ),
        ('{"id":"a","title":"t"}\n', r"news.jsonl:1: .*neither 'received' nor 'published'"),
    ],
)
def test_malformed_news_jsonl_names_file_and_line(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "news.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_news(path)


def test_malformed_news_csv(tmp_path: Path) -> None:
    path = tmp_path / "news.csv"
    path.write_text(
        "timestamp,source,title\n2024-01-01T00:00:00Z,a,ok\nyesterday,b,bad time\n"
        "2024-01-01T00:00:00Z,c\n"
    )
    with pytest.raises(InputError) as error:
        read_news(path)
    assert "news.csv:3: bad timestamp" in str(error.value)
    assert "news.csv:4: expected 3 fields" in str(error.value)
    path.write_text("time,title\n")
    with pytest.raises(InputError, match="header needs"):
        read_news(path)


@pytest.mark.parametrize("name", ["bars.csv", "bars_freqtrade.json", "bars_bybit.json"])
def test_bar_formats_agree(fixtures: Path, name: str) -> None:
    bars = list(iter_bars(fixtures / "core" / name, "BTCUSDT"))
    assert len(bars) >= 3
    first = bars[0]
    assert first.ts_open == datetime(2024, 1, 1, tzinfo=UTC)
    assert first.ts == first.ts_open + timedelta(minutes=15)  # released at its close
    assert (first.open, first.high, first.low, first.close) == (
        D("42000"),
        D("42100"),
        D("41900"),
        D("42050"),
    )
    assert [b.ts_open for b in bars] == sorted(b.ts_open for b in bars)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (
            "2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n2024-01-01T00:15:00Z,1,2,0.5,x,1\n",
            r"bars.csv:4: a price",
        ),
        (
            "2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n2024-01-01T00:15:00Z,1,0.9,0.5,1.5,1\n",
            r"bars.csv:4: inconsistent bar",
        ),
        (
            "2024-01-01T00:15:00Z,1,2,0.5,1.5,1\n2024-01-01T00:00:00Z,1,2,0.5,1.5,1\n"
            "2024-01-01T00:30:00Z,1,2,0.5,1.5,1\n",
            r"bars.csv:4: .*ascending time order",
        ),
        (
            "2024-01-01T00:00:00Z,1,2,0.5,1.5,1\nnot-a-time,1,2,0.5,1.5,1\n",
            r"bars.csv:4: bad timestamp",
        ),
        ("2024-01-01T00:00:00Z,1,2,0.5,1.5\n", r"bars.csv:3: expected 6 fields"),
    ],
)
def test_malformed_bars_name_file_and_line(tmp_path: Path, rows: str, message: str) -> None:
    path = tmp_path / "bars.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n2023-12-31T23:45:00Z,1,2,0.5,1.5,1\n" + rows
    )
    with pytest.raises(InputError, match=message):
        list(iter_bars(path, "BTCUSDT"))


def test_bad_json_bars(tmp_path: Path) -> None:
    path = tmp_path / "bars.json"
    path.write_text("[[1704067200000, 1, 2]")
    with pytest.raises(InputError, match=r"bars\.json:1: not valid JSON"):
        list(iter_bars(path, "BTCUSDT"))


def test_merge_releases_bars_before_news_at_the_same_instant() -> None:
    bars = [bar(0, "100"), bar(1, "101")]
    at_close = news("n", "x", bars[0].ts)
    before = news("m", "y", bars[0].ts - timedelta(minutes=1))
    merged = list(merge([before, at_close], bars))
    assert [type(e).__name__ for e in merged] == ["NewsItem", "Bar", "NewsItem", "Bar"]
    assert isinstance(merged[1], Bar) and merged[2] is at_close


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("2024-01-02T00:00:00Z,1,2,0.5,nan?,1", "a price or volume is not a number"),
        ("2024-01-02T00:00:00Z,1,0.9,0.5,1.5,1", "inconsistent bar"),
        ("2023-12-01T00:00:00Z,1,2,0.5,1.5,1", "ascending time order"),
        ("2024-01-02T00:00:00+02:00,1,2,0.5,1.5", "expected 6 fields"),
    ],
)
def test_errors_deep_in_a_big_file_still_name_the_line(
    tmp_path: Path, bad: str, message: str
) -> None:
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(300):
        rows.append(f"{(T0 + timedelta(minutes=i)).isoformat()},1,2,0.5,1.5,1")
    rows.insert(259, bad)  # rows[259] is line 260 of the file (line 1 is the header)
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match=rf"bars.csv:260: .*{message}"):
        list(iter_bars(path, "BTCUSDT"))


def test_naive_and_offset_times_in_the_fast_path(tmp_path: Path) -> None:
    rows = ["timestamp,open,high,low,close,volume"]
    for i in range(250):
        ts = T0 + timedelta(minutes=i)
        text = (
            ts.replace(tzinfo=None).isoformat()
            if i % 2
            else ts.astimezone(__import__("datetime").timezone(timedelta(hours=2))).isoformat()
        )
        rows.append(f"{text},1,2,0.5,1.5,1")
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    bars = list(iter_bars(path, "BTCUSDT"))
    assert [b.ts_open for b in bars] == [T0 + timedelta(minutes=i) for i in range(250)]


# -- the one replay driver (issue 12 point 5) -------------------------------------------------

BULL, BEAR = "Bitcoin rallies on huge inflows", "Bitcoin crashes after hack"


def _trial_inputs() -> tuple[list[NewsItem], list[Bar]]:
    bars = [bar(i, str(40000 + 10 * i)) for i in range(40)]
    items = [
        news("a", BULL, bars[5].ts + timedelta(minutes=1)),
        news("b", BEAR, bars[20].ts + timedelta(minutes=1)),
    ]
    return items, bars


def _trial(items: list[NewsItem], bars: list[Bar], model: object, signals: object) -> list[str]:
    from bot.replay import replay
    from bot.store import Store

    result = replay(
        settings(strategy={"window": "30m"}),
        news=items,
        bars=iter(bars),
        symbol="BTCUSDT",
        model=model,  # type: ignore[arg-type]
        signals=signals,  # type: ignore[arg-type]
        store=Store("sqlite://", account="trial", run_id="t", durable=False),
        run_id="trial",
    )
    assert result.recording.n_bars == len(bars) and result.recording.n_news == 2
    return [f"{t.side} {t.qty} {t.price}" for t in result.recording.trades]


def test_trials_on_events_parsed_once_with_an_in_memory_store() -> None:
    from adapters.model.scripted import ScriptedModel
    from bot.events import Label
    from bot.protocols import Prediction
    from bot.replay import given_signals
    from bot.signals import SignalCache

    items, bars = _trial_inputs()
    model = ScriptedModel({BULL: (Label.BULLISH, 0.9), BEAR: (Label.BEARISH, 0.9)})
    cache = SignalCache()
    first = _trial(items, bars, model, cache)
    calls = model.calls
    assert _trial(items, bars, model, cache) == first  # a second trial: same trades
    assert model.calls == calls  # answered from the signal source, not the model
    assert [t.split()[0] for t in first] == ["buy", "sell"]

    # A null model: the answers swapped, given directly; the model is never asked.
    swapped = given_signals(
        model.model_id,
        {
            BULL: Prediction.from_probs((0.9, 0.05, 0.05), model.model_id),
            BEAR: Prediction.from_probs((0.05, 0.05, 0.9), model.model_id),
        },
    )
    null = _trial(items, bars, model, swapped)
    assert model.calls == calls
    assert [t.split()[0] for t in null] == ["sell", "buy"]


def test_play_in_two_parts_records_like_one(tmp_path: Path) -> None:
    from bot.events import Label
    from bot.recording import Recording
    from bot.replay import play, prefetch

    from .helpers import replay_parts

    items, bars = _trial_inputs()
    events = list(merge(items, bars))
    answers = {BULL: (Label.BULLISH, 0.9), BEAR: (Label.BEARISH, 0.9)}
    config = settings(strategy={"window": "30m"})
    whole = replay_parts(tmp_path / "a", answers, config)
    prefetch(whole, [i.text for i in items])
    once = play(whole, events)
    split = replay_parts(tmp_path / "b", answers, config)
    prefetch(split, [i.text for i in items])
    twice = Recording()
    play(split, events[:30], recording=twice)
    play(split, events[30:], recording=twice)
    assert twice.n_bars == once.n_bars == len(bars)
    assert [t.side for t in twice.trades] == [t.side for t in once.trades] == ["buy", "sell"]
    assert list(twice.equity) == list(once.equity)


def test_a_replay_runs_without_full_collections_and_restores_them(tmp_path: Path) -> None:
    """The loop raises the full-collection threshold (what it keeps would be walked again on
    every one) and puts the caller's thresholds back, also when the replay fails."""
    import gc

    from bot.replay import FULL_COLLECTION_EVERY, play

    from .helpers import replay_parts

    before = gc.get_threshold()
    seen: list[tuple[int, int, int]] = []
    parts = replay_parts(tmp_path, {})
    parts.bus.subscribe(Bar, lambda _: seen.append(gc.get_threshold()))
    play(parts, [bar(i, "100") for i in range(3)])
    assert seen == [(before[0], before[1], max(before[2], FULL_COLLECTION_EVERY))] * 3
    assert gc.get_threshold() == before

    def broken() -> Iterator[Bar]:
        yield bar(3, "100")
        raise RuntimeError("the file went away")

    with pytest.raises(RuntimeError, match="went away"):
        play(parts, broken())
    assert gc.get_threshold() == before
