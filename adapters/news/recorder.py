"""The news file: `NewsItem`s as JSON lines, appended by the recorder and replayed by backtests.

Appending is crash-tolerant: each line is written whole, flushed and fsynced before the next; a
file whose last line was cut by a crash gets that fragment set aside on its own line (readers
report it by file and line, and the recorder never appends onto it); and ids already in the file
are not written again, so re-recording after a restart cannot duplicate an item.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO

from bot.errors import InputError
from bot.events import NewsItem


def read_news_file(path: str | Path, *, skip_bad: bool = False) -> Iterator[NewsItem]:
    """Items of a JSONL news file in file order.

    A bad line raises `InputError` naming the file and line; with `skip_bad` it is skipped (used
    by the recorder, which only needs the ids, and must not refuse to append after a crash).
    """
    path = Path(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise InputError(f"{path}: cannot read news file: {error.strerror}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield NewsItem.from_json(raw.decode("utf-8"))
            except (ValueError, KeyError, TypeError) as error:  # UnicodeDecodeError included
                if skip_bad:
                    continue
                raise InputError(f"{path}:{number}: not a news item: {error}") from None


class NewsRecorder:
    """Appends new items to a JSONL file, each exactly once."""

    def __init__(self, path: str | Path, *, fsync: bool = True) -> None:
        self.path = Path(path).expanduser()
        self.fsync = fsync
        self.ids: set[str] = set()
        self.written = 0
        self._handle: IO[str] | None = None

    def open(self) -> NewsRecorder:
        if self._handle is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() and self.path.stat().st_size:
            self.ids = {item.id for item in read_news_file(self.path, skip_bad=True)}
            needs_newline = _last_byte(self.path) != b"\n"
        else:
            needs_newline = False
        try:
            self._handle = self.path.open("a", encoding="utf-8", newline="\n")
        except OSError as error:
            raise InputError(f"{self.path}: cannot write news file: {error.strerror}") from None
        if needs_newline:  # a line cut by a crash: end it, so the next item starts clean
            self._handle.write("\n")
            self._sync()
        return self

    def __enter__(self) -> NewsRecorder:
        return self.open()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def append(self, item: NewsItem) -> bool:
        """Write `item` unless the file already has its id; True when it was written."""
        if self._handle is None:
            self.open()
        assert self._handle is not None
        if item.id in self.ids:
            return False
        self._handle.write(item.to_json() + "\n")
        self._sync()
        self.ids.add(item.id)
        self.written += 1
        return True

    def append_many(self, items: Iterable[NewsItem]) -> int:
        """Write the items the file does not have yet (the poller's `sink`); how many were new."""
        return sum(self.append(item) for item in items)

    def _sync(self) -> None:
        assert self._handle is not None
        self._handle.flush()
        if self.fsync:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _last_byte(path: Path) -> bytes:
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1)
