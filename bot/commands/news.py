"""`lorabot news`: look at the configured feeds once, or record them to a JSONL news file.

Besides the `[[news.feeds]]`, both include Bybit's own announcements (`[bybit.announcements]`,
read from the configured Bybit REST endpoint) unless that section is disabled or `--feed` picks
feeds by URL.

`lorabot news --once` only looks: it prints the items its store has not seen and writes nothing,
so it never takes an item away from a recorder (or a daemon) that uses the same store.
`lorabot news --record FILE` polls like the daemon does and appends each new item to FILE, the
format `lorabot backtest --news FILE` replays. Its store (seen ids, raw entries, feed state) is
`[news] store_url`, by default news.sqlite in the data folder, apart from the daemon's store.

stdout carries one line per item (or the JSONL form with --json); failed feeds, damaged feeds
and invalid entries are named on stderr by URL.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol

import click

from bot.cli import config_option, settings_for
from bot.clock import LiveClock
from bot.commands.paths import writable_file
from bot.config import Settings
from bot.errors import UserError
from bot.events import NewsItem, iso
from bot.log import setup_logging
from bot.protocols import Prediction, Publish, SentimentModel
from bot.shutdown import stop_on_signals
from bot.store import Store


class FeedOutcome(Protocol):
    """What this command prints of one feed's poll (`adapters.news.results.PollResult`)."""

    url: str
    items: list[NewsItem]
    error: str
    warning: str
    invalid: list[str]
    earlier: int


OnOutcome = Callable[[FeedOutcome], Awaitable[None]]


class AnnouncementSource(Protocol):
    """What this command uses of `adapters.bybit.announcements.BybitAnnouncements`."""

    async def run(self, publish: Publish) -> None: ...

    async def fetch_once(self, *, record: bool, on_result: OnOutcome | None) -> object: ...


def news_store_url(settings: Settings, override: str | None = None) -> str:
    """The store `lorabot news` uses: --store, else `[news] store_url`, else news.sqlite."""
    return override or settings.news.store_url or f"sqlite:///{settings.data_dir / 'news.sqlite'}"


def format_line(item: NewsItem, prediction: Prediction | None = None) -> str:
    """One item on one line: time, source, [label confidence], symbols, [flags] full title."""
    when = iso(item.published or item.received).replace("T", " ")
    parts = [when, f"{item.source:<14}"]
    if prediction is not None:
        parts.append(f"{prediction.label.word:>7} {prediction.confidence:.2f}")
    parts.append(f"{','.join(item.symbols) or '-':<8}")
    flags = "".join(
        f"[{flag}] " for flag, on in (("stale", item.stale), ("undated", item.undated)) if on
    )
    parts.append(f"{flags}{item.title}")
    return "  ".join(parts)


class _Printer:
    """Prints items as they arrive, labelled by the model when one could be built, and counts
    what the feeds answered for the closing summary."""

    def __init__(self, model: SentimentModel | None, as_json: bool) -> None:
        self.model = model
        self.as_json = as_json
        self.printed = 0
        self.feeds = 0
        self.failed = 0
        self.earlier = 0

    async def outcome(self, result: FeedOutcome) -> None:
        self.feeds += 1
        self.failed += bool(result.error)
        self.earlier += result.earlier
        _report(result)
        await self.items(result.items)

    async def items(self, items: Sequence[NewsItem]) -> None:
        if not items:
            return
        predictions: list[Prediction | None] = [None] * len(items)
        if self.model is not None and not self.as_json:
            try:
                predictions = list(await self.model.classify([item.text for item in items]))
            except Exception as error:  # the items matter more than their labels
                _warn(f"the model could not label these items ({error}); printing them without")
                self.model = None
        for item, prediction in zip(items, predictions, strict=True):
            click.echo(item.to_json() if self.as_json else format_line(item, prediction))
            self.printed += 1

    async def publish(self, item: object) -> None:
        if isinstance(item, NewsItem):
            await self.items([item])


def _warn(message: str) -> None:
    click.echo(f"lorabot news: {message}", err=True)


def _report(result: FeedOutcome) -> None:
    if result.error:
        _warn(f"{result.url}: failed: {result.error}")
        return
    if result.warning:
        _warn(f"{result.url}: {result.warning}")
    if result.invalid:
        shown = "; ".join(result.invalid[:3]) + ("; ..." if len(result.invalid) > 3 else "")
        count = len(result.invalid)
        noun = "entry" if count == 1 else "entries"
        _warn(f"{result.url}: skipped {count} invalid {noun} ({shown})")


def _model(settings: Settings, enabled: bool) -> SentimentModel | None:
    if not enabled:
        return None
    try:
        from bot.assemble import build_model

        return build_model(settings)
    except (UserError, ImportError, OSError) as error:
        _warn(f"no labels: {error}")
        return None


@click.command()
@click.option(
    "--once", is_flag=True, help="Fetch once, print the new items and exit (the default)."
)
@click.option(
    "--feed",
    "feeds",
    multiple=True,
    metavar="URL",
    help="Only this feed (repeatable); a URL not in the config is fetched with the defaults.",
)
@click.option(
    "--record",
    "record_path",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Poll until stopped and append each new item to FILE (JSONL, what `lorabot backtest "
    "--news` replays); with --once, one poll.",
)
@click.option(
    "--store",
    "store_url",
    metavar="URL",
    help="Store of seen ids and feed state (default: [news] store_url, else news.sqlite in the "
    "data folder).",
)
@click.option("--json", "as_json", is_flag=True, help="Print items as JSON lines, not text.")
@click.option("--model/--no-model", "use_model", default=True, help="Label items with the model.")
@click.option("-v", "--verbose", is_flag=True, help="Log every poll on stderr.")
@config_option
@click.pass_context
def news(
    ctx: click.Context,
    once: bool,
    feeds: tuple[str, ...],
    record_path: Path | None,
    store_url: str | None,
    as_json: bool,
    use_model: bool,
    verbose: bool,
    config_path: Path | None,
) -> None:
    """Fetch the configured news feeds once, or record them to a JSONL file.

    Each new item is one line on stdout: time, source, the model's label and confidence,
    symbols, and the full title. [stale] marks items the bot must not trade on: already listed
    when the feed was first fetched and published before this start, or older than
    [news] max_age. [undated] marks items without a date (they take the time received).
    Failed feeds, damaged feeds and invalid entries are named on stderr by URL.

    --once only looks and records nothing, so a recorder using the same store misses nothing.
    Exits 1 when every feed failed.
    """
    settings = settings_for(ctx, config_path)
    continuous = record_path is not None and not once
    level = "debug" if verbose else (settings.log.level if continuous else "error")
    setup_logging(level, settings.log.format, file=settings.log.file)
    with_feeds = bool(feeds) or any(feed.enabled for feed in settings.news.feeds)
    with_announcements = not feeds and settings.bybit.announcements.enabled
    if not with_feeds and not with_announcements:
        raise UserError(
            "no news feeds: add [[news.feeds]] tables to the config (see config.toml), "
            "enable [bybit.announcements] or pass --feed URL"
        )
    from adapters.news.poller import NewsPoller
    from adapters.news.recorder import NewsRecorder

    if record_path is not None:
        writable_file(record_path, "--record")
    store = Store(news_store_url(settings, store_url))
    recorder = NewsRecorder(record_path) if record_path is not None else None
    try:
        if recorder is not None:
            recorder.open()
        clock = LiveClock()
        sink = recorder.append_many if recorder is not None else None
        poller = NewsPoller.from_settings(settings, store, clock=clock, sink=sink, for_engine=False)
        announcements = _announcements(settings, store, clock, sink) if with_announcements else None
        printer = _Printer(_model(settings, use_model), as_json)
        if continuous:
            if feeds:
                poller.feeds = tuple(poller.state(url).config for url in feeds)
            runs = [poller.run] if with_feeds else []
            if announcements is not None:
                runs.append(announcements.run)
            asyncio.run(_record(_together(runs), printer))
            assert recorder is not None
            _warn(f"recorded {recorder.written} new items to {recorder.path}")
            return
        record = recorder is not None

        async def look(on_result: OnOutcome) -> None:
            looks: list[Awaitable[object]] = []
            if with_feeds:
                looks.append(
                    poller.fetch_once(list(feeds) or None, record=record, on_result=on_result)
                )
            if announcements is not None:
                looks.append(announcements.fetch_once(record=record, on_result=on_result))
            await asyncio.gather(*looks)

        asyncio.run(_once(look, printer))
    finally:
        if recorder is not None:
            recorder.close()
        store.close()
    summary = (
        f"{printer.printed} new item{'' if printer.printed == 1 else 's'} "
        f"from {printer.feeds} feed{'' if printer.feeds == 1 else 's'}"
    )
    if printer.failed:
        summary += f" ({printer.failed} failed)"
    if printer.earlier:
        summary += f"; {printer.earlier} seen by an earlier run, not shown"
    if recorder is not None:
        summary += f"; {recorder.written} appended to {recorder.path}"
    _warn(summary)
    if printer.feeds and printer.failed == printer.feeds:
        sys.exit(1)


def _announcements(
    settings: Settings, store: Store, clock: LiveClock, sink: Callable[..., object] | None
) -> AnnouncementSource:
    """Bybit's announcements, recorded for history only (never queued for a daemon's model)."""
    from adapters.bybit.announcements import BybitAnnouncements
    from bot.symbols import SymbolTable

    return BybitAnnouncements.from_settings(
        settings,
        store,
        SymbolTable.from_settings(settings),
        clock=clock,
        sink=sink,
        for_engine=False,
    )


def _together(
    runs: Sequence[Callable[[Publish], Coroutine[Any, Any, None]]],
) -> Callable[[Publish], Coroutine[Any, Any, None]]:
    """Several sources' `run` as one: all until cancelled, each cancelled with the others."""

    async def run(publish: Publish) -> None:
        await asyncio.gather(*(one(publish) for one in runs))

    return run


async def _once(look: Callable[[OnOutcome], Awaitable[object]], printer: _Printer) -> None:
    """One poll of the chosen feeds; each feed is printed as soon as it is done."""
    try:
        await look(printer.outcome)
    finally:
        if printer.model is not None:
            await printer.model.close()


async def _record(run: Callable[[Publish], Coroutine[Any, Any, None]], printer: _Printer) -> None:
    """Run the poller until SIGINT/SIGTERM, then stop cleanly."""
    task = asyncio.create_task(run(printer.publish))
    remove_handlers = stop_on_signals(task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        remove_handlers()
        if printer.model is not None:
            await printer.model.close()
