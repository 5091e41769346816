"""Labelled sentiment data in the formats people actually have, read into one shape.

Every loader returns `Example`s whose label is already in the one project order (bearish=0,
neutral=1, bullish=2), so nothing downstream ever has to know which scheme a file used. Each
format is read only as itself: a Twitter Financial News Sentiment file (integer labels, 0 bearish,
1 bullish, 2 neutral) looks exactly like a plain CSV, so integer labels are taken in that order only
when the format is named (`--format tfns`); a plain CSV must use word labels. Bad rows raise an
`InputError` that names the file and line, and nothing is silently dropped.

A few known data sets can be named instead of a path (`tfns`, `phrasebank`): they are fetched from
the Hugging Face hub when online (cached by huggingface_hub); a local path always works offline.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from bot.errors import InputError, UserError
from bot.events import Label, parse_time

Format = Literal["auto", "csv", "jsonl", "tfns", "phrasebank", "fiqa"]
FORMATS: tuple[str, ...] = ("auto", "csv", "jsonl", "tfns", "phrasebank", "fiqa")

# TFNS (zeroshot/twitter-financial-news-sentiment): 0 bearish, 1 bullish, 2 neutral.
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


@dataclass(frozen=True, slots=True)
class Example:
    """One labelled text; `origin` ("file:line") lets any later error point back at the row."""

    text: str
    label: Label
    timestamp: datetime | None = None
    origin: str = ""


@dataclass(frozen=True)
class ReadOptions:
    """How to read formats whose labels need a rule (FiQA scores, PhraseBank agreement)."""

    fiqa_bearish_below: float = -0.1
    fiqa_bullish_above: float = 0.1
    phrasebank_agreement: str = "50"


@dataclass(frozen=True)
class KnownDataset:
    """A data set that can be named: where its files live on the hub and how to read them."""

    name: str
    repo: str
    fmt: Format
    train: str
    test: str | None = None
    description: str = ""
    files: tuple[str, ...] = field(default=())


KNOWN_DATASETS: dict[str, KnownDataset] = {
    "tfns": KnownDataset(
        name="tfns",
        repo="zeroshot/twitter-financial-news-sentiment",
        fmt="tfns",
        train="sent_train.csv",
        test="sent_valid.csv",
        description="Twitter Financial News Sentiment (9,543 train / 2,388 validation tweets)",
    ),
    "phrasebank": KnownDataset(
        name="phrasebank",
        repo="takala/financial_phrasebank",
        fmt="phrasebank",
        train="data/FinancialPhraseBank-v1.0.zip",
        description="Financial PhraseBank (Malo et al. 2014), sentences at an agreement level",
    ),
}


class DataError(InputError):
    """A data file or data set name that cannot be read as asked."""


# --------------------------------------------------------------------------------------------
# Public entry points


def load_examples(
    source: str | Path,
    fmt: str = "auto",
    options: ReadOptions | None = None,
    *,
    split: Literal["train", "test"] = "train",
) -> list[Example]:
    """Read a local file (or a PhraseBank folder), or a known data set's `split`."""
    opts = options or ReadOptions()
    if fmt not in FORMATS:
        raise DataError(f"unknown data format {fmt!r}: use one of {', '.join(FORMATS)}")
    path = Path(str(source)).expanduser()
    if not path.exists():
        name = str(source).lower()
        if name in KNOWN_DATASETS:
            return _load_known(KNOWN_DATASETS[name], split, opts)
        known = ", ".join(KNOWN_DATASETS)
        raise DataError(f"{source}: no such file or folder (known data set names: {known})")
    examples = _load_path(path, fmt, opts)
    if not examples:
        raise DataError(f"{path}: no labelled rows")
    return examples


def known_test_split(source: str | Path) -> bool:
    """Whether `source` names a known data set that has its own held-out split."""
    known = KNOWN_DATASETS.get(str(source).lower())
    return known is not None and known.test is not None and not Path(str(source)).exists()


def write_jsonl(examples: Iterable[Example], path: Path) -> Path:
    """Write examples in the plain JSONL format (word labels), the form `compare` hands workers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for example in examples:
            row: dict[str, Any] = {"text": example.text, "label": example.label.word}
            if example.timestamp is not None:
                row["timestamp"] = example.timestamp.isoformat()
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def label_counts(examples: Sequence[Example]) -> tuple[int, int, int]:
    counts = [0, 0, 0]
    for example in examples:
        counts[int(example.label)] += 1
    return counts[0], counts[1], counts[2]


# --------------------------------------------------------------------------------------------
# Format detection


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


# --------------------------------------------------------------------------------------------
# Loaders


def _load_path(path: Path, fmt: str, opts: ReadOptions) -> list[Example]:
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
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not valid JSON: {error.msg}") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: each line must be a JSON object")
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
    return _parse_phrasebank(_read_text(path, "latin-1"), str(path))


def _parse_phrasebank(content: str, name: str) -> list[Example]:
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


def sample(examples: Sequence[Example], limit: int | None, seed: int) -> list[Example]:
    """A seeded random subset of `limit` examples (files are often sorted by label, so the first
    rows would not do), kept in file order."""
    if not limit or limit >= len(examples):
        return list(examples)
    import random

    chosen = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in chosen]


# --------------------------------------------------------------------------------------------
# Known data sets (hub, when online)


def _load_known(known: KnownDataset, split: str, opts: ReadOptions) -> list[Example]:
    filename = known.test if split == "test" and known.test else known.train
    local = _hub_file(known, filename)
    if known.fmt == "phrasebank":
        wanted = PHRASEBANK_FILES.get(opts.phrasebank_agreement)
        if wanted is None:
            raise DataError(f"unknown PhraseBank agreement level {opts.phrasebank_agreement!r}")
        with zipfile.ZipFile(local) as archive:
            member = next((n for n in archive.namelist() if n.endswith(wanted)), None)
            if member is None:
                raise DataError(f"{local}: no {wanted} in the archive")
            content = archive.read(member).decode("latin-1")
        return _parse_phrasebank(content, f"{known.name}:{wanted}")
    return _load_path(local, known.fmt, opts)


def _hub_file(known: KnownDataset, filename: str) -> Path:
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        raise UserError("huggingface_hub is needed to fetch named data sets") from None
    offline = any(
        os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
    try:
        return Path(
            hf_hub_download(known.repo, filename, repo_type="dataset", local_files_only=offline)
        )
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        raise DataError(
            f"data set {known.name!r} comes from the Hugging Face hub ({known.repo}/{filename}) "
            f"and could not be fetched ({type(error).__name__}); pass a local file instead "
            "(CSV text,label with word labels is always accepted)"
        ) from None
