"""What one poll of a feed found, and what a round of polls over several feeds found."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.events import NewsItem


@dataclass(slots=True)
class PollResult:
    """One feed's poll: the new items, or why there are none."""

    url: str
    source: str
    items: list[NewsItem] = field(default_factory=list)
    error: str = ""
    warning: str = ""
    invalid: list[str] = field(default_factory=list)
    not_modified: bool = False  # a 304, or the very bytes processed last time: nothing to parse
    known: int = 0  # entries already seen (same id, or same title from another feed)
    earlier: int = 0  # of those, entries recorded by an earlier run (or another process)
    retry_in: float | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass(slots=True)
class PollReport:
    results: list[PollResult]

    @property
    def items(self) -> list[NewsItem]:
        found = [item for result in self.results for item in result.items]
        return sorted(found, key=lambda item: (item.published or item.received, item.received))

    @property
    def failures(self) -> list[PollResult]:
        return [result for result in self.results if not result.ok]

    @property
    def earlier(self) -> int:
        return sum(result.earlier for result in self.results)
