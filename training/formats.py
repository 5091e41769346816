"""Readers, one per file format people actually have (plain CSV/JSONL, TFNS, PhraseBank, FiQA).

Each format is read only as itself: a Twitter Financial News Sentiment file (integer labels, 0
bearish, 1 bullish, 2 neutral) looks exactly like a plain CSV, so integer labels are taken in that
order only when the format is named (`--format tfns`); a plain CSV must use word labels. Bad rows
raise a `DataError` that names the file and line, and nothing is silently dropped.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.events import Label, parse_time
from training.examples import DataError, Example, Format, ReadOptions

TFNS_LABELS = {"0": Label.BEARISH, "1": Label.BULLISH, "2": Label.NEUTRAL}
PHRASEBANK_FILES = {
    "50": "Sentences_50Agree.txt",
    "66": "Sentences_66Agree.txt",
    "75": "Sentences_75Agree.txt",
    "all": "Sentences_AllAgree.txt",
}
_TEXT_KEYS = ("text", "sentence", "title", "headline")
_LABEL_KEYS = ("label", "sentiment")
_SCORE_KEYS = ("score", "sentiment_score")
_TIME_KEYS = ("timestamp", "time", "date", "published")


def detect_format(path: Path) -> Format:
    """Guess a file's format from its name and first line; TFNS is never guessed."""
    if path.is_dir():
        return "phrasebank"
    name = path.name.lower()
    if name.startswith("sentences_") and name.endswith("agree.txt"):
        return "phrasebank"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if suffix == ".json":
        return "fiqa"
    if suffix in (".csv", ".tsv"):
        header = _first_line(path, "utf-8-sig").lower()
        columns = {c.strip() for c in header.replace("\t", ",").split(",")}
        if columns & set(_SCORE_KEYS) and not columns & set(_LABEL_KEYS):
            return "fiqa"
        return "csv"
    if suffix == ".txt" and "@" in _first_line(path, "latin-1"):
        return "phrasebank"
    raise DataError(
        f"{path}: cannot tell the format from the name; pass --format "
        "(csv, jsonl, tfns, phrasebank or fiqa)"
    )


def _first_line(path: Path, encoding: str) -> str:
    try:
        with path.open(encoding=encoding, errors="replace") as handle:
            return handle.readline()
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None


def load_path(path: Path, fmt: str, opts: ReadOptions) -> list[Example]:
    chosen = detect_format(path) if fmt == "auto" else fmt
    if chosen == "phrasebank":
        return _load_phrasebank(path, opts)
    if path.is_dir():
        raise DataError(
            f"{path}: is a folder; only a Financial PhraseBank folder can be read whole"
        )
    if chosen == "csv":
        return _load_csv(path, tfns=False)
    if chosen == "tfns":
        return _load_csv(path, tfns=True)
    if chosen == "jsonl":
        return _load_jsonl(path)
    if chosen == "fiqa":
        return _load_fiqa(path, opts)
    raise DataError(f"unknown data format {chosen!r}")  # pragma: no cover - guarded above


def _read_text(path: Path, encoding: str = "utf-8") -> str:
    try:
        return path.read_text(encoding=encoding)
    except UnicodeDecodeError as error:
        line = path.read_bytes()[: error.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not valid {encoding} text") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None


def _pick(row: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in row and row[key] not in (None, ""):
            return row[key]
    return None


def lines(content: str) -> list[str]:
    """Lines split at \\n (and \\r\\n) only. `str.splitlines` also splits at U+2028, U+0085 and
    other separators that tweets contain and that latin-1 files decode to (byte 0x85), which
    would cut a row in two and shift every line number after it."""
    return [line.removesuffix("\r") for line in content.split("\n")]


def _word_label(value: Any, where: str) -> Label:
    if isinstance(value, bool) or value is None:
        raise DataError(f"{where}: missing label")
    text = str(value).strip()
    if text.lstrip("-").isdigit():
        raise DataError(
            f"{where}: integer label {text!r}: a plain file needs word labels "
            "(bearish/neutral/bullish or negative/neutral/positive); for Twitter Financial News "
            "Sentiment pass --format tfns"
        )
    try:
        return Label.parse(text)
    except ValueError as error:
        raise DataError(f"{where}: {error}") from None


def _timestamp(value: Any, where: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError):
        raise DataError(
            f"{where}: bad timestamp {value!r} (use ISO-8601 or epoch seconds)"
        ) from None


def _load_csv(path: Path, *, tfns: bool) -> list[Example]:
    text = _read_text(path, "utf-8-sig")
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise DataError(f"{path}: empty file") from None
    text_col = next((header.index(k) for k in _TEXT_KEYS if k in header), None)
    label_col = next((header.index(k) for k in _LABEL_KEYS if k in header), None)
    if text_col is None or label_col is None:
        raise DataError(
            f"{path}:1: the header must name a text column and a label column "
            f"(text,label[,timestamp]); found {','.join(header) or 'nothing'}"
        )
    time_col = next((header.index(k) for k in _TIME_KEYS if k in header), None)
    examples: list[Example] = []
    for row in reader:
        line = reader.line_num
        where = f"{path}:{line}"
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise DataError(f"{where}: expected {len(header)} columns, got {len(row)}")
        sentence = row[text_col].strip()
        if not sentence:
            raise DataError(f"{where}: empty text")
        raw = row[label_col].strip()
        if tfns:
            if raw not in TFNS_LABELS:
                raise DataError(
                    f"{where}: TFNS label must be 0 (bearish), 1 (bullish) or 2 (neutral), "
                    f"got {raw!r}"
                )
            label = TFNS_LABELS[raw]
        else:
            label = _word_label(raw, where)
        stamp = _timestamp(row[time_col], where) if time_col is not None else None
        examples.append(Example(sentence, label, stamp, where))
    return examples


def _load_jsonl(path: Path) -> list[Example]:
    examples: list[Example] = []
    for number, line in enumerate(lines(_read_text(path)), start=1):
        where = f"{path}:{number}"
        if not line.strip():
            continue
        row = _json_object(line, where)
        sentence = _pick(row, _TEXT_KEYS)
        if not isinstance(sentence, str) or not sentence.strip():
            raise DataError(f"{where}: missing or empty 'text'")
        raw = _pick(row, _LABEL_KEYS)
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        label = _word_label(raw, where)
        stamp = _timestamp(_pick(row, _TIME_KEYS), where)
        examples.append(Example(sentence.strip(), label, stamp, where))
    return examples


def _load_phrasebank(path: Path, opts: ReadOptions) -> list[Example]:
    """Financial PhraseBank's own files: `sentence@label`, latin-1, one file per agreement level."""
    if path.is_dir():
        level = opts.phrasebank_agreement
        if level not in PHRASEBANK_FILES:
            raise DataError(f"unknown PhraseBank agreement level {level!r}: use 50, 66, 75 or all")
        candidates = [path / PHRASEBANK_FILES[level], *path.rglob(PHRASEBANK_FILES[level])]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise DataError(f"{path}: no {PHRASEBANK_FILES[level]} in this folder")
        path = found
    return parse_phrasebank(_read_text(path, "latin-1"), str(path))


def parse_phrasebank(content: str, name: str) -> list[Example]:
    examples: list[Example] = []
    for number, line in enumerate(lines(content), start=1):
        where = f"{name}:{number}"
        if not line.strip():
            continue
        sentence, sep, raw = line.rpartition("@")
        if not sep or not sentence.strip():
            raise DataError(f"{where}: expected 'sentence@label'")
        examples.append(Example(sentence.strip(), _word_label(raw, where), None, where))
    return examples


def fiqa_label(score: float, opts: ReadOptions) -> Label:
    if score < opts.fiqa_bearish_below:
        return Label.BEARISH
    if score > opts.fiqa_bullish_above:
        return Label.BULLISH
    return Label.NEUTRAL


def _score(value: Any, where: str) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise DataError(f"{where}: sentiment score {value!r} is not a number") from None
    if score != score:  # NaN
        raise DataError(f"{where}: sentiment score is NaN")
    return score


def _load_fiqa(path: Path, opts: ReadOptions) -> list[Example]:
    """FiQA-2018 task 1 headlines: JSON `{id: {sentence, info: [{sentiment_score, ...}]}}`, or a
    CSV / JSONL with `sentence|text` and `score|sentiment_score`. A sentence with several aspect
    scores is labelled by their mean."""
    if path.suffix.lower() in (".csv", ".tsv"):
        return [_fiqa_row(row, where, opts) for row, where in _csv_dicts(path)]
    content = _read_text(path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for number, line in enumerate(lines(content), start=1):
            if line.strip():
                rows.append((_json_object(line, f"{path}:{number}"), f"{path}:{number}"))
        return [_fiqa_row(row, where, opts) for row, where in rows]
    try:
        data = json.loads(content)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON: {error.msg}") from None
    records: Iterable[tuple[str, Any]]
    if isinstance(data, dict):
        records = data.items()
    elif isinstance(data, list):
        records = ((str(i), item) for i, item in enumerate(data))
    else:
        raise DataError(f"{path}: expected a JSON object of FiQA records")
    examples = []
    for key, record in records:
        where = f"{path}: record {key!r}"
        if not isinstance(record, dict):
            raise DataError(f"{where}: expected an object with 'sentence' and 'info'")
        examples.append(_fiqa_row(record, where, opts))
    return examples


def _fiqa_row(row: dict[str, Any], where: str, opts: ReadOptions) -> Example:
    sentence = _pick(row, _TEXT_KEYS)
    if not isinstance(sentence, str) or not sentence.strip():
        raise DataError(f"{where}: missing or empty 'sentence'")
    info = row.get("info")
    if isinstance(info, list) and info:
        scores = [
            _score(_pick(i, _SCORE_KEYS) if isinstance(i, dict) else None, where) for i in info
        ]
        score = sum(scores) / len(scores)
    else:
        raw = _pick(row, _SCORE_KEYS)
        if raw is None:
            raise DataError(f"{where}: no 'sentiment_score' (or 'score')")
        score = _score(raw, where)
    stamp = _timestamp(_pick(row, _TIME_KEYS), where)
    return Example(sentence.strip(), fiqa_label(score, opts), stamp, where)


def _csv_dicts(path: Path) -> Iterator[tuple[dict[str, Any], str]]:
    reader = csv.DictReader(
        io.StringIO(_read_text(path, "utf-8-sig"), newline=""),
        delimiter="\t" if path.suffix.lower() == ".tsv" else ",",
    )
    if reader.fieldnames is None:
        raise DataError(f"{path}: empty file")
    reader.fieldnames = [name.strip().lower() for name in reader.fieldnames]
    for row in reader:
        yield row, f"{path}:{reader.line_num}"


def _json_object(line: str, where: str) -> dict[str, Any]:
    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{where}: not valid JSON: {error.msg}") from None
    if not isinstance(row, dict):
        raise DataError(f"{where}: each line must be a JSON object")
    return row
