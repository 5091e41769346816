"""Feed bytes to clean entries, with feedparser doing the RSS/Atom dialects and the encodings.

feedparser is lenient on purpose: a truncated or not well-formed feed still yields the entries it
could read, and those are kept (with a warning naming the XML error and its line). A response that
is not a feed at all (an HTML page, JSON, an empty body) is an error that says so, and points at
the feed an HTML page advertises when it has one. An entry with neither a title nor a guid/link,
or with no text at all, is invalid: counted and reported with its feed, never turned into an item.

The body is always handed to feedparser as a stream: given bytes, feedparser first tries them as
a *local file name*, so a server answering "/etc/passwd" would make it read that file.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from adapters.news.clean import clean_text, first_sentence
from adapters.news.errors import FeedError
from adapters.news.identity import normalise_link

_FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/feed+json")
_DATE_KEYS = ("published_parsed", "updated_parsed", "created_parsed")
_EARLIEST = datetime(1995, 1, 1, tzinfo=UTC)  # no news feed is older: such a date is a broken one


@dataclass(frozen=True, slots=True)
class Entry:
    """One feed entry in plain text, before it becomes a `NewsItem` (ids, staleness, symbols)."""

    guid: str
    link: str
    title: str
    body: str
    published: datetime | None
    raw: dict[str, Any]


@dataclass(slots=True)
class ParsedFeed:
    entries: list[Entry]
    invalid: list[str] = field(default_factory=list)
    warning: str = ""
    title: str = ""
    version: str = ""
    encoding: str = ""


def parse_feed(body: bytes, *, url: str, content_type: str = "") -> ParsedFeed:
    """Parse one response body; raise `FeedError` when it is not a feed at all."""
    if not body.strip():
        raise FeedError(url, "empty response body")
    parsed = _feedparser_parse(body, url, content_type)
    if _encoding_guessed_wrong(parsed, content_type):
        detected = _detect_encoding(body)
        if detected:
            parsed = _feedparser_parse(body, url, f"application/xml; charset={detected}")
    version = parsed.get("version") or ""
    raw_entries = parsed.get("entries") or []
    problem = _describe_bozo(parsed)
    if not version and not raw_entries:
        raise FeedError(url, _not_a_feed(parsed, body, content_type, url, problem))
    entries: list[Entry] = []
    invalid: list[str] = []
    for position, raw in enumerate(raw_entries, start=1):
        entry, reason = _entry(raw, url)
        if entry is None:
            invalid.append(f"entry {position}: {reason}")
        else:
            entries.append(entry)
    warning = ""
    if problem:
        if not raw_entries:
            raise FeedError(url, f"not a readable feed: {problem}")
        warning = f"{problem}; kept the {len(entries)} readable entries"
    return ParsedFeed(
        entries=entries,
        invalid=invalid,
        warning=warning,
        title=clean_text(parsed.get("feed", {}).get("title")),
        version=version,
        encoding=parsed.get("encoding") or "",
    )


def _feedparser_parse(body: bytes, url: str, content_type: str) -> Any:
    import feedparser

    # No content-location: feedparser would resolve a bare RSS guid ("12345") against it.
    headers = {"content-type": content_type} if content_type else None
    return feedparser.parse(
        io.BytesIO(body),
        response_headers=headers,
        sanitize_html=False,  # everything is reduced to plain text by clean_text anyway
        resolve_relative_uris=False,
    )


def _encoding_guessed_wrong(parsed: Any, content_type: str) -> bool:
    """feedparser fell back to windows-1252 because the bytes were not the declared UTF-8."""
    import feedparser

    exception = parsed.get("bozo_exception")
    return isinstance(exception, feedparser.CharacterEncodingOverride) and (
        "charset=" not in content_type.lower()
    )


def _detect_encoding(body: bytes) -> str:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # pragma: no cover - a base dependency; keep feedparser's guess without it
        return ""
    best = from_bytes(body[:200_000]).best()
    return best.encoding if best is not None and best.encoding not in ("utf_8", "ascii") else ""


def _describe_bozo(parsed: Any) -> str:
    """The XML problem feedparser met, with its line, or "" for the harmless kinds."""
    import feedparser

    if not parsed.get("bozo"):
        return ""
    exception = parsed.get("bozo_exception")
    if isinstance(exception, feedparser.NonXMLContentType | feedparser.UndeclaredNamespace):
        return ""
    if isinstance(exception, feedparser.CharacterEncodingOverride):
        return f"wrong character encoding ({exception})"
    get_line = getattr(exception, "getLineNumber", None)
    if callable(get_line):
        column = exception.getColumnNumber()
        message = exception.getMessage() if hasattr(exception, "getMessage") else str(exception)
        return f"not well-formed XML at line {get_line()}, column {column}: {message}"
    return f"not well-formed: {exception}"


def _not_a_feed(parsed: Any, body: bytes, content_type: str, url: str, problem: str) -> str:
    head = body[:512].lstrip().lower()
    kind = content_type.split(";")[0].strip() or "unknown content type"
    if b"<html" in head or b"<!doctype html" in head or kind == "text/html":
        links = parsed.get("feed", {}).get("links") or []
        advertised = [
            normalise_link(link.get("href", ""), url)
            for link in links
            if link.get("rel") == "alternate" and link.get("type") in _FEED_TYPES
        ]
        hint = f"; the page links a feed at {advertised[0]}" if advertised else ""
        return f"not an RSS or Atom feed: got an HTML page ({kind}){hint}"
    detail = f" ({problem})" if problem else ""
    return f"not an RSS or Atom feed ({kind}){detail}"


def _published(raw: Any) -> datetime | None:
    for key in _DATE_KEYS:
        # dict.get, not raw.get: FeedParserDict maps a missing published_parsed onto
        # updated_parsed with a DeprecationWarning; the order here is explicit instead.
        value = dict.get(raw, key)
        if isinstance(value, time.struct_time):
            try:
                when = datetime(*value[:6], tzinfo=UTC)
            except ValueError:
                continue
            if when >= _EARLIEST:
                return when
    return None


def _entry(raw: Any, feed_url: str) -> tuple[Entry | None, str]:
    title = clean_text(raw.get("title"))
    guid = str(raw.get("id") or "").strip()
    link = normalise_link(str(raw.get("link") or ""), feed_url)
    summary = clean_text(raw.get("summary"))
    if not summary:
        contents = raw.get("content") or []
        summary = clean_text(contents[0].get("value")) if contents else ""
    if not title and not guid and not link:
        return None, "no title and no guid or link"
    if not title:
        if not summary:
            return None, f"no title and no text ({guid or link})"
        title = first_sentence(summary)
    return Entry(guid, link, title, summary, _published(raw), _plain(raw)), ""


def _plain(value: Any) -> Any:
    """The raw entry as JSON-ready data (feedparser dicts and struct_times made plain)."""
    if isinstance(value, time.struct_time):
        try:
            return datetime(*value[:6], tzinfo=UTC).isoformat().replace("+00:00", "Z")
        except ValueError:
            return None
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
