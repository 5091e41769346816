"""Loaders read each format as itself, map every scheme to bearish/neutral/bullish, and name the
file and line of anything they cannot read."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.events import Label
from training.data import (
    DataError,
    Example,
    ReadOptions,
    detect_format,
    load_examples,
    sample,
    write_jsonl,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"


def test_plain_csv_word_labels_and_synonyms() -> None:
    examples = load_examples(FIXTURES / "news.csv")
    assert len(examples) == 47
    by_text = {e.text: e.label for e in examples}
    assert by_text["Globex soars on strong demand"] == Label.BULLISH  # written "positive"
    assert by_text["Initech slumps on weak demand"] == Label.BEARISH  # written "negative"
    assert by_text["Tyrell slumps on weak demand"] == Label.BEARISH
    assert examples[0].origin.endswith("news.csv:2")


def test_tfns_only_when_named() -> None:
    path = FIXTURES / "tfns_sample.csv"
    examples = load_examples(path, "tfns")
    plain = {e.text.split(" - ", 1)[1].rsplit(" https", 1)[0]: e.label for e in examples}
    reference = {e.text: e.label for e in load_examples(FIXTURES / "news.csv")}
    # TFNS integers: 0 bearish, 1 bullish, 2 neutral -> our order, checked row by row.
    assert all(reference[text] == label for text, label in plain.items())
    assert {e.label for e in examples} == {Label.BEARISH, Label.NEUTRAL, Label.BULLISH}
    with pytest.raises(DataError, match=r"tfns_sample\.csv:2: integer label '0'.*--format tfns"):
        load_examples(path)


def test_tfns_rejects_other_codes(tmp_path: Path) -> None:
    bad = tmp_path / "t.csv"
    bad.write_text("text,label\nfine,0\nodd,3\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.csv:3: TFNS label must be 0.*got '3'"):
        load_examples(bad, "tfns")


def test_bad_rows_name_file_and_line() -> None:
    with pytest.raises(DataError, match=r"bad_label\.csv:3: unknown label 'maybe'"):
        load_examples(FIXTURES / "bad_label.csv")
    with pytest.raises(DataError, match=r"integer_labels\.csv:2: integer label"):
        load_examples(FIXTURES / "integer_labels.csv")
    with pytest.raises(DataError, match=r"bad\.jsonl:3: not valid JSON"):
        load_examples(FIXTURES / "bad.jsonl")


def test_csv_header_and_encoding_errors(tmp_path: Path) -> None:
    headerless = tmp_path / "h.csv"
    headerless.write_text("Stocks rally,bullish\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"h\.csv:1: the header must name a text column"):
        load_examples(headerless)
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"text,label\nok,bullish\n\xff\xfe,neutral\n")
    with pytest.raises(DataError, match=r"b\.csv:3: not valid utf-8"):
        load_examples(binary)
    short = tmp_path / "s.csv"
    short.write_text("text,label,timestamp\nStocks rally,bullish\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.csv:2: expected 3 columns, got 2"):
        load_examples(short)
    stamp = tmp_path / "t.csv"
    stamp.write_text("text,label,timestamp\nStocks rally,bullish,yesterday\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"t\.csv:2: bad timestamp 'yesterday'"):
        load_examples(stamp)


def test_jsonl_with_timestamps() -> None:
    examples = load_examples(FIXTURES / "news.jsonl")
    assert len(examples) == 20
    assert examples[0].timestamp == datetime(2024, 3, 1, tzinfo=UTC)
    assert examples[1].timestamp == datetime(2024, 3, 1, 1, tzinfo=UTC)


def test_phrasebank_file_latin1_and_folder_agreement(tmp_path: Path) -> None:
    examples = load_examples(FIXTURES / "Sentences_50Agree.txt")
    assert len(examples) == 8
    assert [e.label for e in examples[:3]] == [Label.BULLISH, Label.NEUTRAL, Label.BEARISH]
    assert any("Café" in e.text and "älso" in e.text for e in examples)  # latin-1 decoded
    folder = tmp_path / "FinancialPhraseBank-v1.0"
    folder.mkdir()
    for name in ("Sentences_50Agree.txt", "Sentences_AllAgree.txt"):
        shutil.copy(FIXTURES / name, folder / name)
    assert len(load_examples(folder, options=ReadOptions(phrasebank_agreement="all"))) == 4
    assert len(load_examples(folder, options=ReadOptions(phrasebank_agreement="50"))) == 8
    with pytest.raises(DataError, match=r"no Sentences_75Agree\.txt"):
        load_examples(folder, options=ReadOptions(phrasebank_agreement="75"))


def test_phrasebank_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "Sentences_66Agree.txt"
    path.write_bytes(b"Profit rose .@positive\nno label here\n")
    with pytest.raises(DataError, match=r"Sentences_66Agree\.txt:2: expected 'sentence@label'"):
        load_examples(path)


def test_fiqa_scores_to_labels_with_configurable_thresholds(tmp_path: Path) -> None:
    path = FIXTURES / "fiqa_headlines.json"
    labels = [e.label for e in load_examples(path)]
    # -0.374, -0.24 bearish; -0.05 neutral; mean(0.62, 0.3) bullish
    assert labels == [Label.BEARISH, Label.BEARISH, Label.NEUTRAL, Label.BULLISH]
    wide = ReadOptions(fiqa_bearish_below=-0.3, fiqa_bullish_above=0.5)
    assert [e.label for e in load_examples(path, options=wide)] == [
        Label.BEARISH,
        Label.NEUTRAL,
        Label.NEUTRAL,
        Label.NEUTRAL,
    ]
    table = tmp_path / "fiqa.csv"
    table.write_text("sentence,score\nShares jump,0.4\nShares slip,-0.2\nMeh,0\n", encoding="utf-8")
    assert detect_format(table) == "fiqa"
    assert [e.label for e in load_examples(table)] == [
        Label.BULLISH,
        Label.BEARISH,
        Label.NEUTRAL,
    ]
    broken = tmp_path / "fiqa_bad.csv"
    broken.write_text("sentence,score\nShares jump,lots\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"fiqa_bad\.csv:2: sentiment score 'lots'"):
        load_examples(broken)


def test_unknown_source_and_format() -> None:
    with pytest.raises(DataError, match=r"no such file or folder.*tfns, phrasebank"):
        load_examples("no/such/file.csv")
    with pytest.raises(DataError, match="unknown data format"):
        load_examples(FIXTURES / "news.csv", "xml")


def test_known_name_offline_says_use_a_local_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=r"zeroshot/twitter-financial-news-sentiment.*local file"):
        load_examples("tfns")


def test_sample_is_seeded_and_keeps_file_order() -> None:
    examples = load_examples(FIXTURES / "news.csv")
    first = sample(examples, 10, seed=1)
    assert first == sample(examples, 10, seed=1)
    assert first != sample(examples, 10, seed=2)
    positions = [examples.index(e) for e in first]
    assert positions == sorted(positions)
    assert sample(examples, None, seed=1) == examples


def test_jsonl_round_trip(tmp_path: Path) -> None:
    examples = load_examples(FIXTURES / "news.jsonl")
    again = load_examples(write_jsonl(examples, tmp_path / "x.jsonl"))
    assert [(e.text, e.label, e.timestamp) for e in again] == [
        (e.text, e.label, e.timestamp) for e in examples
    ]


def test_unicode_line_separators_stay_inside_their_row(tmp_path: Path) -> None:
    """U+2028 in a tweet and byte 0x85 in a latin-1 file are not line ends."""
    jsonl = tmp_path / "x.jsonl"
    rows = [
        {"text": "Stocks rally\u2028after the bell", "label": "bullish"},
        {"text": "Flat day\x85again", "label": "neutral"},
        {"text": "Shares slump", "label": "bearish"},
    ]
    jsonl.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n")
    examples = load_examples(jsonl)
    assert [e.text for e in examples] == [r["text"] for r in rows]
    assert examples[2].origin.endswith("x.jsonl:3")
    assert load_examples(write_jsonl(examples, tmp_path / "y.jsonl")) == [
        Example(e.text, e.label, e.timestamp, e.origin.replace("x.jsonl", "y.jsonl"))
        for e in examples
    ]
    phrasebank = tmp_path / "Sentences_75Agree.txt"
    phrasebank.write_bytes(b"Sales rose \x85 sharply .@positive\r\nCosts fell .@neutral\r\n")
    parsed = load_examples(phrasebank)
    assert [e.label for e in parsed] == [Label.BULLISH, Label.NEUTRAL]
    assert parsed[1].origin.endswith(":2")
