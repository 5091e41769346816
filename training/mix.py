"""Several labelled data sets in one run: `--data` repeated, or a `--data-mix mix.toml`.

A crypto headline and a stock tweet are different tasks that share words: training on both keeps
what the model knew and adds what it lacked, but one pooled score would hide a set it forgot. So
every set keeps its name through the run: it is split on its own (temporal when it has dates,
so validation is its later rows, as in live use), its rows can weigh more or less in the loss,
and it is scored on its own.

A mix file lists the sets:

    [[sets]]
    name = "crypto"                       # default: the file's stem
    path = "cryptolin.csv"                # relative to the mix file (or a known name: tfns)
    text_column = "news"                  # other CSVs: which columns hold what
    label_column = "final_manual_labelling"
    label_map = { "-1" = "bearish", "0" = "neutral", "1" = "bullish" }
    date_column = "date"
    weight = 2.0                          # loss weight of its rows (default 1)
    test_from = "2021-06-01"              # rows dated from then on: this set's test split
    # or: test = "file"; valid = "file"; format = "tfns" for known formats
"""

from __future__ import annotations

import csv
import io
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.events import Label, parse_time
from training.data import KNOWN_DATASETS, known_test_split, load_examples
from training.examples import FORMATS, DataError, Example, ReadOptions

_KEYS = {
    "name",
    "path",
    "format",
    "text_column",
    "label_column",
    "label_map",
    "date_column",
    "weight",
    "test",
    "test_from",
    "valid",
}
MAX_WEIGHT = 100.0


@dataclass(frozen=True)
class DataSet:
    """One named set of a mix: where it is, how to read it, how much it weighs."""

    name: str
    path: str
    fmt: str = "auto"
    text_column: str = ""
    label_column: str = ""
    label_map: tuple[tuple[str, str], ...] = ()
    date_column: str = ""
    weight: float = 1.0
    test: str = ""
    test_from: str = ""
    valid: str = ""

    @property
    def by_columns(self) -> bool:
        return bool(self.text_column or self.label_column or self.label_map or self.date_column)


def set_name(path: str) -> str:
    """A set's default name: a known name as given, else the file's stem."""
    if str(path).lower() in KNOWN_DATASETS and not Path(path).exists():
        return str(path).lower()
    return Path(path).stem or str(path)


def unique_names(sets: Sequence[DataSet]) -> list[DataSet]:
    """Names must tell the sets apart in every table: repeated ones get -2, -3..."""
    seen: dict[str, int] = {}
    out = []
    for item in sets:
        count = seen.get(item.name, 0) + 1
        seen[item.name] = count
        out.append(item if count == 1 else _renamed(item, f"{item.name}-{count}"))
    return out


def _renamed(item: DataSet, name: str) -> DataSet:
    from dataclasses import replace

    return replace(item, name=name)


def sets_from_flags(data: Sequence[str], formats: Sequence[str]) -> list[DataSet]:
    """`--data` repeated: one `--format` for all, or one per `--data` in the same order."""
    if len(formats) > 1 and len(formats) != len(data):
        raise DataError(
            f"{len(data)} --data but {len(formats)} --format: give one --format for all, "
            "or one per --data in the same order"
        )
    chosen = (
        list(formats) * len(data) if len(formats) == 1 else list(formats) or ["auto"] * len(data)
    )
    return unique_names(
        [DataSet(set_name(path), path, fmt) for path, fmt in zip(data, chosen, strict=True)]
    )


def read_mix(path: Path) -> list[DataSet]:
    """The `[[sets]]` of a mix file; each problem is one line naming the set and the key."""
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise DataError(f"{path}: not valid TOML: {error}") from None
    entries = document.get("sets")
    if not isinstance(entries, list) or not entries:
        raise DataError(f"{path}: needs at least one [[sets]] table with a path")
    extra = sorted(set(document) - {"sets"})
    if extra:
        raise DataError(f"{path}: unknown top-level key {extra[0]!r} (only [[sets]] tables)")
    return unique_names([_mix_set(entry, index, path) for index, entry in enumerate(entries, 1)])


def _mix_set(entry: Any, index: int, mix: Path) -> DataSet:
    where = f"{mix}: set {index}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: each [[sets]] entry must be a table")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise DataError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(_KEYS))})")
    raw_path = entry.get("path")
    if not isinstance(raw_path, str) or not raw_path.strip():
        raise DataError(f"{where}: 'path' is missing (a file, or a known name such as tfns)")
    fmt = str(entry.get("format", "auto"))
    if fmt not in FORMATS:
        raise DataError(f"{where}: format {fmt!r} is not one of {', '.join(FORMATS)}")
    weight = entry.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise DataError(f"{where}: weight must be a number, got {weight!r}")
    if not 0 < float(weight) <= MAX_WEIGHT:
        raise DataError(f"{where}: weight {weight} must be above 0 and at most {MAX_WEIGHT:g}")
    label_map = entry.get("label_map", {})
    if not isinstance(label_map, dict):
        raise DataError(f'{where}: label_map must be a table such as {{ "-1" = "bearish" }}')
    mapped = []
    for key, value in label_map.items():
        try:
            Label.parse(str(value))
        except ValueError:
            raise DataError(
                f"{where}: label_map maps {key!r} to {value!r}, not bearish, neutral or bullish"
            ) from None
        mapped.append((str(key).strip(), str(value)))
    test_from = _text(entry, "test_from", where)
    if test_from:
        _date(test_from, f"{where}: test_from")
    path = _beside(mix, raw_path.strip())
    return DataSet(
        name=_text(entry, "name", where) or set_name(path),
        path=path,
        fmt=fmt,
        text_column=_text(entry, "text_column", where),
        label_column=_text(entry, "label_column", where),
        label_map=tuple(mapped),
        date_column=_text(entry, "date_column", where),
        weight=float(weight),
        test=_beside(mix, _text(entry, "test", where)),
        test_from=test_from,
        valid=_beside(mix, _text(entry, "valid", where)),
    )


def _text(entry: dict[str, Any], key: str, where: str) -> str:
    value = entry.get(key, "")
    if isinstance(value, datetime):
        return value.isoformat()
    if not isinstance(value, str):
        raise DataError(f"{where}: {key} must be text, got {value!r}")
    return value.strip()


def _beside(mix: Path, value: str) -> str:
    """A path relative to the mix file's folder; a known name or a missing file stays as given."""
    if not value:
        return ""
    near = mix.parent / value
    return str(near) if not Path(value).is_absolute() and near.exists() else value


def _date(value: str, where: str) -> datetime:
    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError):
        raise DataError(f"{where}: bad date {value!r} (use ISO-8601, e.g. 2021-06-01)") from None


# ---------------------------------------------------------------------------------------------
# reading a set


def load_set(
    item: DataSet, options: ReadOptions, split: str = "train"
) -> tuple[list[Example], list[Example]]:
    """(rows to train and validate on, this set's test rows) for one set.

    The test rows are, in order of preference: the set's `test` file, its rows dated on or after
    `test_from`, or a known data set's own held-out split."""
    rows = read_set_file(item, item.path, options, "train" if split == "train" else "test")
    if item.test:
        return rows, read_set_file(item, item.test, options, "test")
    if item.test_from:
        start = _date(item.test_from, f"{item.name}: test_from")
        undated = next((e for e in rows if e.timestamp is None), None)
        if undated is not None:
            raise DataError(
                f"{undated.origin}: no date, but set {item.name!r} has test_from (name its "
                "date_column)"
            )
        early = [e for e in rows if e.timestamp is not None and e.timestamp < start]
        late = [e for e in rows if e.timestamp is not None and e.timestamp >= start]
        if not early or not late:
            raise DataError(
                f"set {item.name!r}: test_from {item.test_from} leaves "
                f"{len(early)} rows before it and {len(late)} from it; both must be non-empty"
            )
        return early, late
    if split == "train" and known_test_split(item.path):
        return rows, read_set_file(item, item.path, options, "test")
    return rows, []


def read_set_file(item: DataSet, path: str, options: ReadOptions, split: str) -> list[Example]:
    if item.by_columns:
        return read_columns(item, Path(path))
    return load_examples(path, item.fmt, options, split="test" if split == "test" else "train")


def read_columns(item: DataSet, path: Path) -> list[Example]:
    """A CSV whose columns are named by the set: text, label (mapped), and an optional date."""
    if not item.text_column or not item.label_column:
        raise DataError(f"set {item.name!r}: name both text_column and label_column")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not valid utf-8 text") from None
    except OSError as error:
        raise DataError(f"{path}: cannot read: {error.strerror}") from None
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    header = reader.fieldnames or []
    named = {
        "text_column": item.text_column,
        "label_column": item.label_column,
        "date_column": item.date_column,
    }
    for key, column in named.items():
        if column and column not in header:
            raise DataError(
                f"{path}:1: {key} {column!r} is not a column (found {', '.join(header)})"
            )
    mapping = dict(item.label_map)
    examples = []
    for row in reader:
        where = f"{path}:{reader.line_num}"
        text = (row.get(item.text_column) or "").strip()
        if not text:
            raise DataError(f"{where}: empty text in column {item.text_column!r}")
        raw = (row.get(item.label_column) or "").strip()
        word = mapping.get(raw, raw) if mapping else raw
        if mapping and raw not in mapping:
            raise DataError(
                f"{where}: label {raw!r} is not in label_map (keys: {', '.join(mapping)})"
            )
        try:
            label = Label.parse(word)
        except ValueError:
            raise DataError(
                f"{where}: label {raw!r} is not bearish/neutral/bullish; give a label_map"
            ) from None
        stamp = None
        if item.date_column:
            value = (row.get(item.date_column) or "").strip()
            stamp = _date(value, where) if value else None
        examples.append(Example(text, label, stamp, where))
    if not examples:
        raise DataError(f"{path}: no labelled rows")
    return examples


def span(examples: Sequence[Example]) -> dict[str, str] | None:
    """{"start", "end"} (ISO-8601) of the rows' dates, or None when any row has no date."""
    stamps = [e.timestamp for e in examples]
    if not stamps or any(s is None for s in stamps):
        return None
    dated = [s for s in stamps if s is not None]
    return {"start": min(dated).isoformat(), "end": max(dated).isoformat()}
