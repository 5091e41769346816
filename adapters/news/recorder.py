"""The news file: `NewsItem`s as JSON lines, appended by the recorder and replayed by backtests
(`adapters.files.read_news`).

Appending is crash-tolerant. Each line is written whole, flushed and fsynced. The poller writes
the file *before* it commits the same items to its store (the recorder is its `sink`), so a crash
between the two re-fetches those items on the next start instead of losing them, and the ids
already in the file keep them from being written twice. A last line cut short by a crash belongs
to an item that was never committed (it will be fetched again), so it is removed on open: the
backtest reader refuses a file with a broken line, and this one must stay replayable.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import IO

from bot.errors import InputError
from bot.events import NewsItem
from bot.log import get_logger

log = get_logger("adapters.news.recorder")


class NewsRecorder:
    """Appends new items to a JSONL file, each id at most once."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.fsync = fsync
        self.ids: set[str] = set()
        self.written = 0
        self._handle: IO[str] | None = None

    def open(self) -> NewsRecorder:
        if self._handle is not None:
            return self
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists():
                self._drop_partial_line()
                self.ids = _recorded_ids(self.path)
            self._handle = self.path.open("a", encoding="utf-8", newline="\n")
        except OSError as error:
            raise InputError(f"{self.path}: cannot write news file: {error.strerror}") from None
        return self

    def __enter__(self) -> NewsRecorder:
        return self.open()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def append(self, item: NewsItem) -> bool:
        """Write `item` unless the file already has its id; True when it was written."""
        handle = self._handle or self.open()._handle
        assert handle is not None
        if item.id in self.ids:
            return False
        handle.write(item.to_json() + "\n")
        handle.flush()
        if self.fsync:
            os.fsync(handle.fileno())
        self.ids.add(item.id)
        self.written += 1
        return True

    def append_many(self, items: Iterable[NewsItem]) -> int:
        """Write the items the file does not have yet (the poller's `sink`); how many were new."""
        return sum(self.append(item) for item in items)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def _drop_partial_line(self) -> None:
        size = self.path.stat().st_size
        if not size:
            return
        with self.path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            # Find the end of the last complete line (read the tail backwards in blocks).
            end = size
            keep = 0
            while end > 0:
                start = max(0, end - 65536)
                handle.seek(start)
                block = handle.read(end - start)
                newline = block.rfind(b"\n")
                if newline >= 0:
                    keep = start + newline + 1
                    break
                end = start
            handle.truncate(keep)
        log.warning(
            "news file: removed a partial last line left by an interrupted write",
            path=str(self.path),
            bytes=size - keep,
        )


def _recorded_ids(path: Path) -> set[str]:
    """The ids already in a news file; lines that are not items are the backtest's to report."""
    ids: set[str] = set()
    with path.open("rb") as handle:
        for raw in handle:
            if not raw.strip():
                continue
            try:
                ids.add(NewsItem.from_json(raw.decode("utf-8")).id)
            except (ValueError, KeyError, TypeError):
                continue
    return ids
