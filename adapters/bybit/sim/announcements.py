"""The simulator's `GET /v5/announcements/index`: Bybit's own announcements, scripted.

Items are scripted with a publish time; one becomes visible once the simulator's clock has passed
it, so a test can schedule a listing "in 2 s" and watch a poller find it, or add one at once
(`Announcements.add`, or `POST /sim/announcement` from another process). The answer follows
Bybit's: `locale` is required, `type` (the type key) and `tag` filter, `page` (from 1) and
`limit` (1..100, default 20) page through the items newest first, and `result` is
`{"total": n, "list": [...]}` with each item's `title`, `description`, `type` (`title`, `key`),
`tags`, `url`, `dateTimestamp`, `startDataTimestamp`, `endDataTimestamp` and `publishTime`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from adapters.bybit.sim.accounts import SimError

TYPE_TITLES = {
    "new_crypto": "New Listings",
    "delistings": "Delistings",
    "latest_bybit_news": "Latest Bybit News",
    "latest_activities": "Latest Activities",
    "product_updates": "Product Updates",
    "maintenance_updates": "Maintenance Updates",
    "new_fiat_listings": "New Fiat Listings",
    "other": "Other",
}
MAX_LIMIT = 100
DEFAULT_LIMIT = 20


@dataclass(frozen=True)
class Announcement:
    title: str
    type_key: str
    publish_ms: int
    description: str = ""
    tags: tuple[str, ...] = ()
    url: str = ""
    locale: str = "en-US"
    start_ms: int = 0  # an activity's start and end (0: none)
    end_ms: int = 0

    def record(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "type": {"title": TYPE_TITLES.get(self.type_key, self.type_key), "key": self.type_key},
            "tags": list(self.tags),
            "url": self.url,
            "dateTimestamp": self.publish_ms,
            "startDataTimestamp": self.start_ms,
            "endDataTimestamp": self.end_ms,
            "publishTime": self.publish_ms,
        }


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    text = str(params.get(key) or default)
    if not text.isdigit() or not low <= int(text) <= high:
        raise SimError(10001, f"params error: {key} must be an integer in [{low}, {high}]")
    return int(text)


@dataclass
class Announcements:
    """The scripted items; `clock_ms` is the simulator's clock (what is published by now)."""

    clock_ms: Callable[[], int]
    items: list[Announcement] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(
        self,
        title: str,
        type_key: str = "latest_bybit_news",
        *,
        publish_ms: int | None = None,
        description: str = "",
        tags: Sequence[str] = (),
        url: str = "",
        locale: str = "en-US",
        start_ms: int = 0,
        end_ms: int = 0,
    ) -> Announcement:
        """Script one item (published now unless `publish_ms` says when); returns it."""
        number = next(self._ids)
        item = Announcement(
            title=title,
            type_key=type_key,
            publish_ms=self.clock_ms() if publish_ms is None else publish_ms,
            description=description,
            tags=tuple(tags),
            url=url or f"https://announcements.bybit.com/{locale}/article/sim-{number}/",
            locale=locale,
            start_ms=start_ms,
            end_ms=end_ms,
        )
        self.items.append(item)
        return item

    def add_from_json(self, spec: Mapping[str, Any]) -> Announcement:
        """The admin endpoint's form: the keyword arguments of `add`, `title` required."""
        try:
            return self.add(
                str(spec["title"]),
                str(spec.get("type", "latest_bybit_news")),
                publish_ms=int(spec["publish_ms"]) if "publish_ms" in spec else None,
                description=str(spec.get("description", "")),
                tags=[str(t) for t in spec.get("tags", [])],
                url=str(spec.get("url", "")),
                locale=str(spec.get("locale", "en-US")),
                start_ms=int(spec.get("start_ms", 0)),
                end_ms=int(spec.get("end_ms", 0)),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"announcement: {error}") from None

    def page(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """One page of `/v5/announcements/index`, newest first."""
        locale = str(params.get("locale") or "")
        if not locale:
            raise SimError(10001, "params error: locale is required")
        page = _int(params, "page", 1, 1, 10_000)
        limit = _int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        type_key = str(params.get("type") or "")
        tag = str(params.get("tag") or "")
        now = self.clock_ms()
        visible = [
            item
            for item in self.items
            if item.locale == locale
            and item.publish_ms <= now
            and (not type_key or item.type_key == type_key)
            and (not tag or tag in item.tags)
        ]
        visible.sort(key=lambda item: item.publish_ms, reverse=True)
        start = (page - 1) * limit
        return {
            "total": len(visible),
            "list": [item.record() for item in visible[start : start + limit]],
        }
