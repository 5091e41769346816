"""HTTP for feeds: polite (User-Agent, conditional GET, per-host limits) and bounded.

Every fetch has a deadline that covers connecting, the headers and the whole body, so an endless
slow body ends like a silent server does: as a timeout for that feed alone. Bodies are counted
after decompression and refused past `max_bytes` (a 20 MB page or a gzip bomb costs at most that
much memory). A host's concurrency slot is taken before the deadline starts, so waiting politely
behind another feed of the same host never counts as that feed being slow.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import urlsplit

import aiohttp

from adapters.news.errors import FeedError
from bot.clock import Clock

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class FetchResult:
    url: str
    final_url: str
    status: int
    body: bytes
    content_type: str
    etag: str
    last_modified: str
    elapsed: float
    moved_to: str = ""  # set when the server answered with a permanent redirect

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date (counted from `now`)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Fetcher:
    """One aiohttp session shared by all feeds, with a concurrency slot pool per host."""

    def __init__(
        self,
        *,
        user_agent: str,
        per_host_concurrency: int,
        max_bytes: int,
        clock: Clock,
        max_redirects: int = 5,
    ) -> None:
        """`clock` dates a Retry-After given as an HTTP date (that delay becomes a schedule)."""
        self.clock = clock
        self.user_agent = user_agent
        self.per_host_concurrency = per_host_concurrency
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self._hosts: dict[str, asyncio.Semaphore] = {}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        self.open()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def open(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, limit_per_host=0, ttl_dns_cache=300),
                headers={"User-Agent": self.user_agent, "Accept": ACCEPT},
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                trust_env=True,  # honour HTTP(S)_PROXY / NO_PROXY like other tools do
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _slot(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        slot = self._hosts.get(host)
        if slot is None:
            slot = self._hosts[host] = asyncio.Semaphore(self.per_host_concurrency)
        return slot

    async def fetch(
        self, url: str, *, timeout: float, etag: str = "", last_modified: str = ""
    ) -> FetchResult:
        """GET one feed; raise `FeedError` (naming the URL and the reason) on any failure."""
        self.open()
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        async with self._slot(url):
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout):
                    return await self._get(url, headers, started)
            except TimeoutError:
                raise FeedError(url, f"timed out after {timeout:g}s") from None
            except aiohttp.TooManyRedirects:
                raise FeedError(url, f"more than {self.max_redirects} redirects") from None
            except aiohttp.ClientConnectorError as error:
                raise FeedError(url, f"cannot connect: {error.os_error or error}") from None
            except aiohttp.ClientPayloadError as error:
                raise FeedError(url, f"broken response body: {error}") from None
            except aiohttp.InvalidURL as error:
                raise FeedError(url, f"invalid URL: {error}") from None
            except aiohttp.ClientError as error:
                detail = str(error) or type(error).__name__
                raise FeedError(url, f"request failed: {detail}") from None
            except OSError as error:
                raise FeedError(url, f"network error: {error}") from None

    async def _get(self, url: str, headers: dict[str, str], started: float) -> FetchResult:
        assert self._session is not None
        async with self._session.get(
            url, headers=headers, max_redirects=self.max_redirects
        ) as response:
            status = response.status
            if status == 304:
                body = b""
            elif status >= 400:
                retry_after = parse_retry_after(
                    response.headers.get("Retry-After"), self.clock.now()
                )
                reason = f"HTTP {status} {response.reason or ''}".strip()
                if retry_after is not None:
                    reason += f" (Retry-After {retry_after:g}s)"
                raise FeedError(url, reason, status=status, retry_after=retry_after)
            else:
                body = await self._read(url, response)
            moved = ""
            if any(step.status in (301, 308) for step in response.history):
                moved = str(response.url)
            return FetchResult(
                url=url,
                final_url=str(response.url),
                status=status,
                body=body,
                content_type=response.headers.get("Content-Type", ""),
                etag=response.headers.get("ETag", ""),
                last_modified=response.headers.get("Last-Modified", ""),
                elapsed=time.perf_counter() - started,
                moved_to=moved,
            )

    async def _read(self, url: str, response: aiohttp.ClientResponse) -> bytes:
        declared = response.content_length
        encoded = response.headers.get("Content-Encoding", "identity").lower()
        if declared is not None and declared > self.max_bytes and encoded == "identity":
            raise FeedError(
                url, f"response is {declared} bytes, more than max_bytes={self.max_bytes}"
            )
        parts: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(CHUNK):
            size += len(chunk)
            if size > self.max_bytes:
                raise FeedError(
                    url, f"response is larger than max_bytes={self.max_bytes} (stopped reading)"
                )
            parts.append(chunk)
        return b"".join(parts)
