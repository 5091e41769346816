"""`lorabot convert-news`: foreign news layouts to the canonical JSONL that backtests replay.

Each test writes its own small file in the layout it is about and runs the real command line
(`bot.cli.main`); the output is read back with the backtest's own news reader.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.files import read_news
from adapters.files.convert_news import NewsLayout, read_foreign_news
from bot.cli import main
from bot.errors import UserError

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path("/work/shared/data/news/cryptonews_2021_2022.csv")
CRYPTO_NEWS = [
    "--delimiter",
    ";",
    "--columns",
    "timestamp=date,title=title,body=text,source=source,link=url",
    "--time-format",
    "%d-%m-%Y %H:%M",
]
# The shared file's layout: ';'-separated, D-M-YYYY HH:MM, newest first, a sentiment column
# full of quotes and commas, one row with an empty title.
SEMICOLON = """date;sentiment;source;subject;text;title;url
5-7-2022 04:24;{'class': 'neutral'};CryptoNews;bitcoin;Bitcoin climbed.;Bitcoin returns above USD 20K;https://x.test/a
5-7-2022 04:24;{'class': 'positive'};CoinTelegraph;nft;A console.;Nifty News: NFT console;https://x.test/b
4-7-2022 15:53;{'class': 'neutral'};CoinTelegraph;bitcoin;A lede.;;https://x.test/c
12-10-2021 20:00;{'class': 'neutral'};CryptoNews;celo;Celo aims high.;Celo to be fastest EVM chain;https://x.test/d
"""


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    return _run_any(capsys, "convert-news", *args)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_row_refuses_the_file_by_default_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(tmp_path, "news.csv", SEMICOLON)
    out = tmp_path / "news.jsonl"
    code, stdout, stderr = _run(capsys, str(source), str(out), *CRYPTO_NEWS)
    assert code == 1
    assert stderr.strip() == (
        f"lorabot: error: {source}:4: empty title "
        "(--skip-bad-rows writes the other rows and reports each bad one)"
    )
    assert not out.exists() and not list(tmp_path.glob(".*part"))
    assert stdout == ""


def test_skip_bad_rows_writes_the_rest_oldest_first_and_names_each_bad_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(tmp_path, "news.csv", SEMICOLON)
    out = tmp_path / "news.jsonl"
    code, stdout, stderr = _run(
        capsys, str(source), str(out), *CRYPTO_NEWS, "--timezone", "UTC", "--skip-bad-rows"
    )
    assert code == 0, stderr
    assert stdout == ""
    lines = stderr.strip().splitlines()
    assert lines[0] == f"lorabot convert-news: skipped {source}:4: empty title"
    assert lines[1] == (
        f"lorabot convert-news: wrote 3 items to {out} "
        "(2021-10-12T20:00:00Z to 2022-07-05T04:24:00Z); skipped 1 bad row"
    )
    items = read_news(out)
    # Newest-first input: oldest first out, and the two 04:24 items in the order they happened
    # (the file lists the later one first).
    assert [item.title for item in items] == [
        "Celo to be fastest EVM chain",
        "Nifty News: NFT console",
        "Bitcoin returns above USD 20K",
    ]
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["received"] == first["published"] == "2021-10-12T20:00:00Z"
    assert (first["id"], first["link"], first["source"]) == (
        "https://x.test/d",
        "https://x.test/d",
        "CryptoNews",
    )
    assert first["body"] == "Celo aims high."


@pytest.mark.parametrize("delimiter", ["\\t", "tab", "\t"])
def test_tab_separated_iso_stamps_in_a_named_zone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], delimiter: str
) -> None:
    source = _write(
        tmp_path,
        "news.tsv",
        "time\theadline\toutlet\n"
        "2024-01-15T10:00:00\tEther rallies, says analyst\tWire\n"
        "2024-07-15T10:00:00+00:00\tBitcoin slides\tWire\n"
        "2024-07-15T09:00:00\tSolana halts\tWire\n",
    )
    out = tmp_path / "news.jsonl"
    args = ["--delimiter", delimiter, "--columns", "timestamp=time,title=headline,source=outlet"]
    code, _, stderr = _run(capsys, str(source), str(out), *args, "--timezone", "Europe/Berlin")
    assert code == 0, stderr
    got = [(item.title, item.received) for item in read_news(out)]
    assert got == [
        ("Ether rallies, says analyst", datetime(2024, 1, 15, 9, 0, tzinfo=UTC)),  # CET
        ("Solana halts", datetime(2024, 7, 15, 7, 0, tzinfo=UTC)),  # CEST
        ("Bitcoin slides", datetime(2024, 7, 15, 10, 0, tzinfo=UTC)),  # its own offset wins
    ]


def test_every_kind_of_bad_row_is_named_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(
        tmp_path,
        "news.csv",
        "timestamp,title,source\n"
        "2024-05-06T10:00:00Z,Fine,Wire\n"
        "6-5-2024,Day first,Wire\n"
        '"2024-05-06T11:00:00Z","Two\nlines",Wire\n'
        "2024-05-06T12:00:00Z,Too,many,fields\n"
        ",No time,Wire\n"
        "99999999999999999,Far future,Wire\n",
    )
    out = tmp_path / "news.jsonl"
    code, _, stderr = _run(capsys, str(source), str(out), "--skip-bad-rows")
    assert code == 0, stderr
    skipped = [line.split("skipped ", 1)[1] for line in stderr.splitlines()[:-1]]
    hint = "expected ISO-8601 or epoch seconds; give --time-format for other layouts"
    assert skipped == [
        f"{source}:3: bad timestamp '6-5-2024' ({hint})",
        f"{source}:6: expected 3 fields, found 4",
        f"{source}:7: empty timestamp",
        f"{source}:8: bad timestamp '99999999999999999' ({hint})",
    ]
    assert [item.title for item in read_news(out)] == ["Fine", "Two\nlines"]


def test_rows_with_the_same_link_are_written_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _write(
        tmp_path,
        "news.csv",
        "timestamp,title,link\n"
        "2024-05-06T10:00:00Z,Bitcoin up,https://x.test/1\n"
        "2024-05-06T10:05:00Z,Bitcoin up (updated),https://x.test/1\n",
    )
    out = tmp_path / "news.jsonl"
    code, _, stderr = _run(capsys, str(source), str(out))
    assert code == 0, stderr
    assert "; 1 duplicate written once" in stderr
    assert [item.title for item in read_news(out)] == ["Bitcoin up"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--delimiter", ";;"], "--delimiter ';;': give one character"),
        (["--columns", "timestamp=date,headline=title"], "--columns: unknown field 'headline'"),
        (["--columns", "title=title"], "--columns: no column for timestamp (required)"),
        (["--columns", "timestamp"], "--columns: 'timestamp' is not FIELD=COLUMN"),
        (["--timezone", "Mars/Olympus"], "--timezone 'Mars/Olympus': not a known time zone"),
        (["--columns", "timestamp=when,title=title"], ":1: no column 'when' for timestamp"),
    ],
)
def test_bad_options_and_headers_are_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    source = _write(tmp_path, "news.csv", "timestamp,title\n2024-05-06T10:00:00Z,Fine\n")
    code, _, stderr = _run(capsys, str(source), str(tmp_path / "out.jsonl"), *args)
    assert code != 0
    assert len(stderr.strip().splitlines()) == 1
    assert message in stderr


def test_missing_input_and_input_as_output_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.csv"
    code, _, stderr = _run(capsys, str(missing), str(tmp_path / "out.jsonl"))
    assert (code, stderr.strip()) == (1, f"lorabot: error: {missing}: file not found")
    source = _write(tmp_path, "news.csv", "timestamp,title\n2024-05-06T10:00:00Z,Fine\n")
    code, _, stderr = _run(capsys, str(source), str(source))
    assert code == 1 and "the output would overwrite the input" in stderr
    assert source.read_text(encoding="utf-8").startswith("timestamp,title")


@pytest.mark.skipif(not SHARED.is_file(), reason=f"the shared crypto news ({SHARED}) is absent")
def test_the_shared_crypto_news_converts_with_skip_bad_rows(tmp_path: Path) -> None:
    out = tmp_path / "cryptonews.jsonl"
    args = [str(SHARED), str(out), *CRYPTO_NEWS, "--timezone", "UTC"]
    command = [sys.executable, "-m", "bot", "convert-news", *args]
    strict = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert strict.returncode == 1 and "empty title" in strict.stderr and not out.exists()
    done = subprocess.run(
        [*command, "--skip-bad-rows"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if ": empty title" in line]
    assert len(skipped) == 28
    items = read_news(out)
    assert len(items) == 7524 - 28
    assert items[0].received == datetime(2021, 10, 12, 20, 0, tzinfo=UTC)
    assert items[-1].received == datetime(2022, 7, 5, 4, 24, tzinfo=UTC)
    assert [i.received for i in items] == sorted(i.received for i in items)


@pytest.mark.parametrize("name", ["news", "convert-news"])
def test_the_news_commands_load_from_the_lazy_table(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code, stdout, _ = _run_any(capsys, name, "--help")
    assert code == 0 and f"Usage: lorabot {name} [OPTIONS]" in stdout


def _run_any(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as done:
        code = int(done.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.binary(max_size=400),
        st.lists(
            st.lists(st.sampled_from(["", "x", "1e400", "-1", "2024-05-06", "\x00", '"', "é"])),
            max_size=6,
        ).map(lambda rows: "\n".join(";".join(row) for row in rows).encode("utf-8")),
    ),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_any_bytes_give_items_or_one_clear_line(
    tmp_path: Path, body: bytes, delimiter: str
) -> None:
    source = tmp_path / "fuzz.csv"
    source.write_bytes(b"timestamp;title;source\n".replace(b";", delimiter.encode()) + body)
    try:
        done = read_foreign_news(source, NewsLayout(delimiter=delimiter))
    except UserError as error:
        assert "\n" not in str(error) and str(source) in str(error)
        return
    for row in done.bad:
        assert row.line >= 2 and row.reason
    assert [item.received for item in done.items] == sorted(i.received for i in done.items)
