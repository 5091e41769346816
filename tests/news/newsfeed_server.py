"""A real HTTP server on 127.0.0.1 serving feeds, and the helpers the news tests share.

`FeedServer` serves whatever a test puts at a path: fixture files, generated feeds, or one of the
misbehaving responses (slow headers, an endless body, 20 MB, a gzip bomb, 304, 429, 500,
redirect loops). It records each request's headers and the highest number of requests it was
serving at once per path, so politeness (conditional GET, User-Agent, per-host limits) is
asserted on the wire.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.clock import LiveClock
from bot.config import NewsConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "news"
START = datetime(2024, 5, 6, 9, 0, tzinfo=UTC)  # the poller's start-up in most tests
NOW = datetime(2024, 5, 6, 10, 30, tzinfo=UTC)  # "now" when it receives (fixture items are ~10:00)
RSS = "application/rss+xml; charset=utf-8"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def rss(items: list[dict[str, Any]], title: str = "Generated feed") -> bytes:
    """An RSS 2.0 document from dicts with title, guid, link, published (datetime) keys."""
    parts = [
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
    ]
    for item in items:
        parts.append("<item>")
        parts.append(f"<title>{item['title']}</title>")
        if item.get("guid"):
            parts.append(f'<guid isPermaLink="false">{item["guid"]}</guid>')
        if item.get("link"):
            parts.append(f"<link>{item['link']}</link>")
        if item.get("published"):
            parts.append(f"<pubDate>{format_datetime(item['published'], usegmt=True)}</pubDate>")
        if item.get("body"):
            parts.append(f"<description>{item['body']}</description>")
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode()


class FeedServer:
    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.active: dict[str, int] = defaultdict(int)
        self.peak: dict[str, int] = defaultdict(int)
        self.peak_total = 0
        self._active_total = 0
        self.base = ""
        self._runner: web.AppRunner | None = None

    # -- serving ----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path].append(dict(request.headers))
        handler = self.routes.get(path)
        if handler is None:
            return web.Response(status=404, text="no such feed")
        self.active[path] += 1
        self._active_total += 1
        self.peak[path] = max(self.peak[path], self.active[path])
        self.peak_total = max(self.peak_total, self._active_total)
        try:
            return await handler(request)
        finally:
            self.active[path] -= 1
            self._active_total -= 1

    async def start(self) -> FeedServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> int:
        return len(self.requests[path])

    # -- routes -----------------------------------------------------------------------------

    def route(self, path: str, handler: Handler) -> str:
        self.routes[path] = handler
        return self.url(path)

    def feed(
        self,
        path: str,
        body: bytes | Callable[[], bytes],
        *,
        content_type: str = RSS,
        etag: str = "",
        last_modified: str = "",
        compress: bool = False,
        delay: float = 0.0,
    ) -> str:
        """Serve `body` (or what the callable returns now) with conditional GET support."""

        async def handler(request: web.Request) -> web.StreamResponse:
            if delay:
                await asyncio.sleep(delay)
            data = body() if callable(body) else body
            tag = etag or ""
            if tag and request.headers.get("If-None-Match") == tag:
                return web.Response(status=304, headers={"ETag": tag})
            if last_modified and request.headers.get("If-Modified-Since") == last_modified:
                return web.Response(status=304)
            headers = {"Content-Type": content_type}
            if tag:
                headers["ETag"] = tag
            if last_modified:
                headers["Last-Modified"] = last_modified
            if compress:
                data = gzip.compress(data)
                headers["Content-Encoding"] = "gzip"
            return web.Response(body=data, headers=headers)

        return self.route(path, handler)

    def status(self, path: str, status: int, headers: dict[str, str] | None = None) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers=headers, text="" if status == 304 else "x")

        return self.route(path, handler)

    def hang(self, path: str, seconds: float = 5.0) -> str:
        """Accept the request, then say nothing (a server that never answers)."""

        async def handler(request: web.Request) -> web.StreamResponse:
            await asyncio.sleep(seconds)
            return web.Response(body=fixture_bytes("rss2.xml"), content_type="application/rss+xml")

        return self.route(path, handler)

    def trickle(self, path: str, every: float = 0.02, limit: float = 5.0) -> str:
        """Headers at once, then a body that never ends: one byte every `every` seconds."""

        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.StreamResponse(headers={"Content-Type": RSS})
            response.enable_chunked_encoding()
            await response.prepare(request)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + limit
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write(b'<?xml version="1.0"?><rss version="2.0"><channel>')
                while loop.time() < deadline:
                    await response.write(b" ")
                    await asyncio.sleep(every)
            return response

        return self.route(path, handler)

    def huge(self, path: str, size: int, *, declare_length: bool) -> str:
        """A `size`-byte body, with or without Content-Length (then chunked)."""
        chunk = b"<!-- padding -->" * 4096

        async def handler(request: web.Request) -> web.StreamResponse:
            headers = {"Content-Type": RSS}
            response = web.StreamResponse(headers=headers)
            if declare_length:
                response.content_length = size
            else:
                response.enable_chunked_encoding()
            await response.prepare(request)
            sent = 0
            with contextlib.suppress(ConnectionError, RuntimeError):
                while sent < size:
                    part = chunk[: size - sent]
                    await response.write(part)
                    sent += len(part)
            return response

        return self.route(path, handler)

    def redirect(self, path: str, to: str, status: int = 301) -> str:
        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": to})

        return self.route(path, handler)


@contextlib.contextmanager
def threaded_server() -> Iterator[tuple[FeedServer, asyncio.AbstractEventLoop]]:
    """A FeedServer on its own loop in a thread, for tests of blocking code (the CLI)."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    feed_server = FeedServer()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(feed_server.start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10), "the feed server did not start"
    try:
        yield feed_server, loop
    finally:
        asyncio.run_coroutine_threadsafe(feed_server.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def news_config(**overrides: Any) -> NewsConfig:
    """Settings for tests: millisecond intervals and backoff, no jitter."""
    values: dict[str, Any] = {
        "poll_interval": 0.05,
        "timeout": 1.0,
        "backoff_initial": 0.05,
        "backoff_max": 0.4,
        "jitter": 0.0,
        "max_body_chars": 200,
        "max_bytes": 5_000_000,
    }
    values.update(overrides)
    return NewsConfig(**values)


class Clock(LiveClock):
    """A `Clock` whose "now" tests move by hand; its timers still run on the event loop, each
    due `when - now()` seconds after it is set (so a frozen "now" keeps the real intervals)."""

    def __init__(self, now: datetime = NOW) -> None:
        super().__init__()
        self.value = now

    def now(self) -> datetime:
        return self.value

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)
