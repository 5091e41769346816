"""Bad bar and news files through `lorabot backtest`: each is one clean `file:line` line (exit 1),
never an internal error (exit 70) or a run on impossible numbers (issue 11 points 5, 10, 11).

The tests drive the command's entry point, so that they hold whatever module reads the files.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HEADER = "timestamp,open,high,low,close,volume"


def rows(count: int, start: datetime = T0) -> list[str]:
    return [
        f"{(start + timedelta(minutes=15 * i)).isoformat()},100,110,90,105,1" for i in range(count)
    ]


def bars_csv(tmp_path: Path, body: list[str], *, name: str = "bars.csv", bom: bool = False) -> Path:
    path = tmp_path / name
    text = "\n".join([HEADER, *body]) + "\n"
    path.write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return path


def backtest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    bars: Path,
    news: Path | None = None,
    *extra: str,
) -> tuple[int, str]:
    """Exit code and stderr of `lorabot backtest` (lexicon model: no weights to load)."""
    config = tmp_path / "config.toml"
    config.write_text(
        f'[model]\nbackend = "lexicon"\n[store]\ncache_dir = "{tmp_path / "cache"}"\n'
    )
    args = ["backtest", "--config", str(config), "--bars", str(bars)]
    args += ["--news", str(news)] if news else []
    args += ["--out", str(tmp_path / "out"), "--no-progress", *extra]
    try:
        main(args)
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    return code, capsys.readouterr().err


def assert_clean(code: int, err: str, where: str, *words: str) -> None:
    assert code == 1, err
    assert "internal error" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert where in err, err
    for word in words:
        assert word in err, err


@pytest.mark.parametrize("value", ["inf", "Infinity", "-inf", "1e400", "NaN", "sNaN"])
@pytest.mark.parametrize("deep", [False, True], ids=["head", "fast-path"])
def test_impossible_prices_name_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str, deep: bool
) -> None:
    body = rows(300 if deep else 10)
    line = 260 if deep else 5
    stamp = body[line - 2].split(",")[0]
    body[line - 2] = f"{stamp},100,{value},90,105,1"  # the high
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, body))
    assert_clean(code, err, f"bars.csv:{line}:")


@pytest.mark.parametrize("value", ["inf", "1e400", "NaN"])
def test_impossible_volume_and_json_prices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    body = rows(10)
    body[3] = body[3].rsplit(",", 1)[0] + f",{value}"
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, body))
    assert_clean(code, err, "bars.csv:5:", "volume")
    ms = int(T0.timestamp() * 1000)
    data = [[ms + i * 900_000, "100", "110", "90", "105", "1"] for i in range(10)]
    data[4][2] = value
    path = tmp_path / "bars.json"
    path.write_text(json.dumps(data))
    code, err = backtest(tmp_path, capsys, path)
    assert_clean(code, err, "bars.json:1: row 5:")


def test_year_9999_bar_and_news_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = rows(10)
    body.append("9999-12-31T23:45:00,100,110,90,105,1")
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, body))
    assert_clean(code, err, "bars.csv:12:", "out of range")
    news = tmp_path / "news.jsonl"
    news.write_text(json.dumps({"id": "a", "title": "t", "received": "9999-12-31T23:59:59Z"}))
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(10)), news)
    assert_clean(code, err, "news.jsonl:1:", "out of range")
    news = tmp_path / "news.csv"
    news.write_text("timestamp,source,title\n2024-01-01T00:00:00Z,a,ok\n99999999999999999999,b,x\n")
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(10)), news)
    assert_clean(code, err, "news.csv:3:")


def test_lone_surrogate_in_a_title(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    news = tmp_path / "news.jsonl"
    news.write_text(
        '{"id":"a","title":"fine","received":"2024-01-01T00:20:00Z"}\n'
        '{"id":"b","title":"bad \\ud800 title","received":"2024-01-01T00:30:00Z"}\n'
    )
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(10)), news)
    assert_clean(code, err, "news.jsonl:2:", "surrogate")


def test_a_byte_order_mark_is_accepted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    news = tmp_path / "news.csv"
    news.write_bytes(b"\xef\xbb\xbftimestamp,source,title\n2024-01-01T00:20:00Z,a,Bitcoin up\n")
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(10), bom=True), news)
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n_bars"] == 10 and metrics["n_news"] == 1


def test_json_lines_files_are_read_as_json_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ms = int(T0.timestamp() * 1000)
    bars = tmp_path / "bars.jsonl"
    bars.write_text(
        "".join(json.dumps([ms + i * 900_000, 100, 110, 90, 105, 1]) + "\n" for i in range(10))
    )
    news = tmp_path / "news.jsonl"  # a blank first line and a BOM: still JSON lines, not CSV
    news.write_bytes(
        b"\xef\xbb\xbf\n" + json.dumps({"id": "a", "title": "t", "received": ms}).encode() + b"\n"
    )
    code, err = backtest(tmp_path, capsys, bars, news)
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n_bars"] == 10 and metrics["n_news"] == 1
    bars.write_text(bars.read_text() + "[1, 2]\n")
    code, err = backtest(tmp_path, capsys, bars)
    assert_clean(code, err, "bars.jsonl:11:")


def test_descending_bars_say_so_at_the_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(300)[::-1]))
    assert_clean(code, err, "bars.csv:3:", "descending")
    assert "no bars between" not in err


def test_bybit_json_rows_name_a_real_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ms = int(T0.timestamp() * 1000)
    listed = [[str(ms + i * 900_000), "100", "110", "90", "105", "1", "1"] for i in range(6)]
    listed[2] = [str(ms + 3 * 900_000), "100", "110", "120", "105", "1", "1"]  # low above high
    body = ",\n".join("    " + json.dumps(row) for row in listed[::-1])
    path = tmp_path / "kline.json"
    path.write_text('{"retCode": 0, "result": {"list": [\n' + body + "\n]}}\n")
    code, err = backtest(tmp_path, capsys, path)
    assert_clean(code, err, "kline.json:5:")  # the 4th row from the top is the bad one
    assert ":0:" not in err


def test_missing_and_unusable_paths_are_clean_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13 point 5: a missing --bars file was an internal error (exit 70)."""
    code, err = backtest(tmp_path, capsys, tmp_path / "missing.csv")
    assert_clean(code, err, "missing.csv: file not found")
    good = bars_csv(tmp_path, rows(10))
    code, err = backtest(tmp_path, capsys, good, tmp_path / "missing.jsonl")
    assert_clean(code, err, "missing.jsonl: file not found")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = tmp_path / "config.toml"
    args = ["backtest", "--config", str(config), "--bars", str(good), "--no-progress"]
    try:
        main([*args, "--out", str(blocker / "run")])
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    assert_clean(code, capsys.readouterr().err, "--out", "cannot make the run folder")


def test_skip_bad_rows_reports_each_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13 point 8: `--skip-bad-rows` skips and reports each bad row; strict by default."""
    body = rows(12)
    body[4] = body[4].split(",")[0] + ",100,inf,90,105,1"
    bars = bars_csv(tmp_path, body)
    news = tmp_path / "news.csv"
    news.write_text(
        "timestamp,source,title\n2024-01-01T00:20:00Z,a,Bitcoin up\n2024-01-01T00:40:00Z,b,\n"
    )
    code, err = backtest(tmp_path, capsys, bars, news)
    assert_clean(code, err, "news.csv:3: empty title")
    code, err = backtest(tmp_path, capsys, bars, news, "--skip-bad-rows")
    assert code == 0, err
    assert "news.csv:3" in err and "empty title" in err
    assert "bars.csv:6" in err and "not a finite number" in err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["n_bars"] == 11 and metrics["n_news"] == 1


def test_news_and_bars_that_do_not_overlap_warn(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 13 point 8: 0 trades, exit 0 and no word of why was a silent outcome."""
    news = tmp_path / "news.jsonl"
    news.write_text(json.dumps({"id": "a", "title": "Bitcoin up", "received": "2023-06-01T00:00Z"}))
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(10)), news)
    assert code == 0, err
    assert "no news item falls within the bars' time span" in err
    notes = json.loads((tmp_path / "out" / "metrics.json").read_text())["notes"]
    assert any("no news item falls within" in note for note in notes)


def test_other_internal_errors_in_the_readers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found while fuzzing: a time that is a list, a field over csv's limit, JSON nested past the
    recursion limit, an epoch of 1e99999999 (which hung converting to int)."""
    news = tmp_path / "news.jsonl"
    news.write_text('{"id":"a","title":"t","received":[1]}\n')
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, rows(10)), news)
    assert_clean(code, err, "news.jsonl:1: bad news item")
    code, err = backtest(tmp_path, capsys, bars_csv(tmp_path, [rows(1)[0] + "1" * 200_000]))
    assert_clean(code, err, "bars.csv:2: not a readable CSV row")
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code, err = backtest(tmp_path, capsys, deep)
    assert_clean(code, err, "deep.json:1: JSON nested too deeply")
    huge = tmp_path / "huge.json"
    huge.write_text('[["1e99999999",1,2,0.5,1.5,1],[1704067200000,1,2,0.5,1.5,1e99999999]]')
    code, err = backtest(tmp_path, capsys, huge)
    assert_clean(code, err, "huge.json:1: row 1: time 1e99999999 is out of range")
