"""Stable ids for feed entries, so that one story is one `NewsItem` across polls and restarts.

The id is the entry's guid when it is a URI (globally unique by construction), else the guid
qualified by the feed's host (a bare "12345" is only unique within its publisher), else the
entry's link with tracking noise removed, else a hash of the source and the title. Over-long ids
are hashed so the store's key stays small.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from bot.config import FeedConfig
from bot.events import news_id

MAX_ID_CHARS = 512
_TRACKING_PARAMS = frozenset(
    {"fbclid", "gclid", "dclid", "mc_cid", "mc_eid", "igshid", "ref", "ref_src", "cmpid", "ncid"}
)


def feed_host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.")


def source_name(url: str, name: str = "") -> str:
    """The `source` of a feed's items: its configured name, else its host (without www.)."""
    return name.strip() or feed_host(url) or url


def normalise_link(link: str, base: str = "") -> str:
    """An absolute link without fragment and tracking parameters (utm_*, fbclid, ...)."""
    link = link.strip()
    if not link:
        return ""
    if base:
        link = urljoin(base, link)
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return link
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith("utm_") and key.lower() not in _TRACKING_PARAMS
    ]
    return urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", urlencode(query), "")
    )


def _is_uri(value: str) -> bool:
    parts = urlsplit(value)
    if parts.scheme in ("http", "https"):
        return bool(parts.netloc)
    return parts.scheme in ("urn", "tag") and len(value) > len(parts.scheme) + 1


def _bounded(value: str) -> str:
    if len(value) <= MAX_ID_CHARS:
        return value
    return "sha1:" + hashlib.sha1(value.encode("utf-8")).hexdigest()


def entry_id(guid: str, link: str, *, feed_url: str, source: str, title: str) -> str:
    """The one id of an entry (see the module docstring for the order of preference)."""
    guid = guid.strip()
    if guid:
        if _is_uri(guid):
            return _bounded(normalise_link(guid) if guid.startswith("http") else guid)
        return _bounded(f"{feed_host(feed_url)}#{guid}")
    if link:
        return _bounded(link)
    return news_id(source, title)


def feed_weights(feeds: Iterable[FeedConfig]) -> dict[str, float]:
    """Source name -> the feed's configured weight, for the vote (items carry only the source).

    Two feeds sharing a name share a source; the larger weight wins.
    """
    weights: dict[str, float] = {}
    for feed in feeds:
        source = source_name(feed.url, feed.name)
        weights[source] = max(weights.get(source, 0.0), feed.weight)
    return weights
