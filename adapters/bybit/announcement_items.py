"""One Bybit announcement record to a `NewsItem`, or the reason it cannot be one.

A record of `/v5/announcements/index` has `title`, `description`, `type` (`title`, `key`),
`tags`, `url`, `dateTimestamp`, `publishTime` and, for activities, `startDataTimestamp` and
`endDataTimestamp`. The url is the item's id (Bybit gives each announcement one page), so the
same announcement is one item across polls, types and restarts. `published` is `publishTime`
(when the item went out), `received` the caller's clock. The whole record is kept as the item's
raw entry in the news log, with its type key, so items can be grouped by type later.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from adapters.bybit.announcement_symbols import announcement_symbols
from adapters.bybit.fields import ParseError
from adapters.news.clean import clean_text, title_key, truncate
from adapters.news.identity import normalise_link
from adapters.news.items import Candidate, Staleness
from bot.events import NewsItem
from bot.symbols import SymbolTable

SOURCE = "bybit-announcements"
# Bybit's announcements started in 2018; a publishTime before this (or in seconds) is misread.
_EARLIEST_MS = 1_500_000_000_000
_LATEST_MS = 4_102_444_800_000  # 2100-01-01


@dataclass(frozen=True, slots=True)
class Announcement:
    """The fields lorabot reads, checked."""

    title: str
    description: str
    type_key: str
    tags: tuple[str, ...]
    url: str
    published: datetime
    raw: dict[str, Any]


def _text(record: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise ParseError(f"{key} is {type(value).__name__}, not text")
    text = clean_text(value)
    if required and not text:
        raise ParseError(f"{key} is empty")
    return text


def _publish_time(record: Mapping[str, Any]) -> datetime:
    value = record.get("publishTime")
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ParseError(f"publishTime is {type(value).__name__}, not milliseconds")
    text = str(value).strip()
    if not text.isdigit():
        raise ParseError(f"publishTime {text[:30]!r} is not milliseconds")
    ms = int(text)
    if not _EARLIEST_MS <= ms <= _LATEST_MS:
        raise ParseError(f"publishTime {ms} is not a time in milliseconds since 1970")
    return datetime.fromtimestamp(ms / 1000, UTC)


def parse_announcement(record: object) -> Announcement:
    """The checked fields of one record; `ParseError` names the first field that is wrong."""
    if not isinstance(record, Mapping):
        raise ParseError(f"item is {type(record).__name__}, not an object")
    title = _text(record, "title", required=True)
    url = normalise_link(_text(record, "url", required=True))
    if not url.startswith(("https://", "http://")):
        raise ParseError(f"url {url[:80]!r} is not an http(s) link")
    kind = record.get("type")
    type_key = kind.get("key") if isinstance(kind, Mapping) else None
    if not isinstance(type_key, str) or not type_key.strip():
        raise ParseError("type.key is missing")
    tags = record.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ParseError("tags is not a list of text")
    return Announcement(
        title=title,
        description=_text(record, "description", required=False),
        type_key=type_key.strip(),
        tags=tuple(clean_text(tag) for tag in tags if tag.strip()),
        url=url,
        published=_publish_time(record),
        raw=dict(record),
    )


def announcement_candidate(
    announcement: Announcement,
    *,
    received: datetime,
    symbols: SymbolTable,
    staleness: Staleness,
    first_fetch: bool,
    max_body_chars: int,
    default_quote: str = "USDT",
) -> Candidate:
    """The `NewsItem` (source `bybit-announcements`) and what the news log keeps beside it."""
    published = announcement.published
    body = announcement.description
    body = truncate(body, max_body_chars) if body != announcement.title else ""
    item = NewsItem(
        id=announcement.url,
        source=SOURCE,
        title=announcement.title,
        body=body,
        link=announcement.url,
        published=published,
        received=received,
        symbols=announcement_symbols(announcement.title, announcement.tags, symbols, default_quote),
        stale=staleness.is_stale(published, received, undated=False, first=first_fetch),
    )
    raw = {**announcement.raw, "type_key": announcement.type_key}
    return Candidate(item, title_key(announcement.title), raw)
