"""News files for replay: JSON lines (as `adapters/news/recorder.py` writes them) or CSV.

A news item is released at `received` (when it became known; `published` only if nothing else is
known), so a backtest cannot read news before it could have been read live. The layout is told
from the content, not the name: the first non-blank line of a JSONL file is a JSON object.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from adapters.files.problems import Problems, not_utf8, open_text, unicode_problem
from adapters.files.timestamps import out_of_range, read_time
from bot.events import NewsItem, news_id
from bot.symbols import SymbolTable

CSV_HEADER = "timestamp,source,title[,body][,link]"


def read_news(
    path: str | Path, symbols: SymbolTable | None = None, *, skip_bad_rows: bool = False
) -> list[NewsItem]:
    """All items of a JSONL or CSV news file, in release order (stable for equal times); bad rows
    refuse the file, or are reported and left out with `skip_bad_rows`."""
    file = Path(path).expanduser()
    problems = Problems(file, skip=skip_bad_rows)
    try:
        with open_text(file) as handle:
            lines = list(handle)
    except UnicodeDecodeError as error:
        raise not_utf8(file, error) from None
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("{"):
        items = _read_jsonl(lines, problems)
    else:
        items = _read_csv(lines, problems)
    problems.raise_if_any()
    seen: set[str] = set()
    unique: list[NewsItem] = []
    for item in items:
        if item.id in seen:
            continue
        seen.add(item.id)
        if symbols is not None and not item.symbols:
            tagged = symbols.tag(item.title, item.body)
            if tagged:
                item = replace(item, symbols=tagged)
        unique.append(item)
    unique.sort(key=lambda item: item.received)
    return unique


def _checked(item: NewsItem) -> str | None:
    """What is wrong with an item that parsed, or None."""
    problem = unicode_problem(item.id, item.source, item.title, item.body, item.link, *item.symbols)
    if problem:
        return problem
    for ts in (item.received, item.published):
        if ts is not None and (problem := out_of_range(ts)):
            return problem
    return None


def _read_jsonl(lines: Iterable[str], problems: Problems) -> list[NewsItem]:
    items: list[NewsItem] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = NewsItem.from_json(line)
        except json.JSONDecodeError as error:
            problems.add(number, f"not valid JSON ({error.msg} at column {error.colno})")
            continue
        except RecursionError:
            problems.add(number, "JSON nested too deeply")
            continue
        except (ValueError, KeyError, TypeError, AttributeError, OverflowError, OSError) as error:
            problems.add(number, f"bad news item: {error}")
            continue
        problem = _checked(item)
        if problem:
            problems.add(number, f"bad news item: {problem}")
            continue
        items.append(item)
    return items


def _read_csv(lines: list[str], problems: Problems) -> list[NewsItem]:
    reader = csv.reader(lines)
    try:
        return _csv_items(reader, problems)
    except csv.Error as error:
        problems.fatal(reader.line_num, f"not a readable CSV row ({error})")


def _csv_items(reader: Any, problems: Problems) -> list[NewsItem]:
    header = next(reader, None)
    if header is None:
        return []
    columns = [h.strip().lower() for h in header]
    for required in ("timestamp", "source", "title"):
        if required not in columns:
            problems.add(
                1,
                f"the header needs '{CSV_HEADER}' (missing {required!r}; got {','.join(columns)})",
            )
            return []
    index = {name: columns.index(name) for name in columns}
    items: list[NewsItem] = []
    for row in reader:
        number = reader.line_num
        if not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(columns):
            problems.add(number, f"expected {len(columns)} fields, found {len(row)}")
            continue
        title = row[index["title"]].strip()
        source = row[index["source"]].strip() or "unknown"
        if not title:
            problems.add(number, "empty title")
            continue
        try:
            received = read_time(row[index["timestamp"]])
        except ValueError as error:
            reason = str(error)
            if reason.startswith("bad timestamp"):
                reason += " (use ISO-8601)"
            problems.add(number, reason)
            continue
        link = row[index["link"]].strip() if "link" in index else ""
        body = row[index["body"]].strip() if "body" in index else ""
        ident = link or news_id(source, f"{title}\x00{received.isoformat()}")
        items.append(
            NewsItem(
                id=ident,
                source=source,
                title=title,
                body=body,
                link=link,
                published=None,
                received=received,
            )
        )
    return items
