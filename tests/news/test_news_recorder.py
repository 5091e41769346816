"""The JSONL news file: each id once, crash-tolerant, readable by the backtest."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from adapters.files import read_news
from adapters.news.recorder import NewsRecorder
from bot.events import NewsItem

WHEN = datetime(2024, 5, 6, 10, 0, tzinfo=UTC)


def _item(n: int, **extra: object) -> NewsItem:
    fields: dict[str, object] = {
        "id": f"https://wire.example.com/{n}",
        "source": "wire",
        "title": f"Биткоин item {n} — “quoted”",
        "received": WHEN,
        "published": WHEN,
        "symbols": ("BTCUSDT",),
    }
    fields.update(extra)
    return NewsItem(**fields)  # type: ignore[arg-type]


def test_each_id_is_written_once_even_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "news.jsonl"
    with NewsRecorder(path) as recorder:
        assert recorder.append_many([_item(1), _item(2), _item(1)]) == 2
    with NewsRecorder(path) as recorder:
        assert recorder.ids == {_item(1).id, _item(2).id}
        assert recorder.append_many([_item(2), _item(3, stale=True, undated=True)]) == 1
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3
    assert [NewsItem.from_json(line) for line in lines] == [
        _item(1),
        _item(2),
        _item(3, stale=True, undated=True),
    ]
    assert "Биткоин" in lines[0]  # UTF-8 text, not \\u escapes


def test_a_torn_last_line_is_removed_and_the_file_stays_replayable(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    with NewsRecorder(path) as recorder:
        recorder.append(_item(1))
    with path.open("a", encoding="utf-8") as handle:
        handle.write(_item(2).to_json()[:40])
    with NewsRecorder(path) as recorder:
        assert recorder.ids == {_item(1).id}
        recorder.append(_item(2))
    assert [item.id for item in read_news(path)] == [_item(1).id, _item(2).id]


def test_a_file_that_is_only_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "news.jsonl"
    path.write_bytes(b'{"id":"x","tit')
    with NewsRecorder(path, fsync=False) as recorder:
        recorder.append(_item(7))
    assert [item.id for item in read_news(path)] == [_item(7).id]
