"""Bybit's error codes, grouped by how lorabot reacts to them.

Every non-zero `retCode`, HTTP error and network failure is turned into one of the classes below
at the adapter boundary, so the broker and the streams decide by type, never by number, and no
aiohttp or JSON exception leaks into the engine:

- `Transient` (network, timeouts, 5xx, 10000/10016): retry with jittered backoff.
- `RateLimited` (10006, 10018, 10429, HTTP 403/429): wait for Bybit's reset time, then retry.
- `ClockSkew` (10002): measure the clock offset again, then retry.
- `CredentialsError` (10003, 10004, 10005, 10007, 10009, 10010, 33004, ...): fatal; the run stops.
- `OrderRejected` and its kinds (110007 insufficient balance, invalid quantity or price, ...):
  that one order is rejected with the venue's reason; nothing is retried.
- `OrderNotFound` / `OrderNotOpen` (110001, 110008, ...): the order's state is read back instead.
- `DuplicateOrder` (110072): an order with this orderLinkId already exists, i.e. an earlier
  attempt did reach Bybit; it is read back, never placed twice.
- `NotModified` (110043 leverage, 34040 TP/SL, 110026 margin mode): already so; success.
- `AccountSetupError` (110013, 3400045): leverage or margin mode cannot be set; fatal at start.

Venue text is not trusted to be free of credentials: Bybit's 10004 answer echoes the string it
signed, API key included. Every client that holds keys passes the venue's text through `redact`
before an error carrying it exists (`BybitError.redacted`), so nothing logged, raised or printed
past the adapter can contain the key or the secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from bot.errors import FatalError, TransientError

MASK = "***"


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (API key, API secret) replaced by a mask; longest first."""
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class BybitError(Exception):
    """Base of every error the adapter raises; `code` is Bybit's retCode (or the HTTP status)."""

    reaction = "fail this request"

    def __init__(self, code: int, message: str, request: str = "") -> None:
        self.code = code
        self.message = message
        self.request = request
        where = f" ({request})" if request else ""
        super().__init__(f"Bybit {code}: {message}{where}")

    def redacted(self, secrets: Iterable[str | None]) -> BybitError:
        """This error with the secrets masked in its message and request (in place)."""
        secrets = tuple(secrets)
        self.message = redact(self.message, secrets)
        self.request = redact(self.request, secrets)
        self.args = tuple(redact(str(a), secrets) for a in self.args)
        return self


class Transient(BybitError, TransientError):
    reaction = "retry with backoff"


class NetworkError(Transient):
    """No answer at all (connection refused, reset, timeout): the outcome is unknown."""

    reaction = "retry with backoff; an order whose outcome is unknown is read back first"


class RateLimited(Transient):
    reaction = "wait until Bybit's rate-limit window resets, then retry"

    def __init__(self, code: int, message: str, request: str = "", reset_ms: int = 0) -> None:
        super().__init__(code, message, request)
        self.reset_ms = reset_ms


class ClockSkew(Transient):
    reaction = "measure the clock offset again, then retry"


class CredentialsError(BybitError, FatalError):
    """Bad, expired or under-privileged API keys, a banned IP: nothing can work; stop."""

    reaction = "fatal: stop the run"


class EndpointError(BybitError, FatalError):
    """The configured URL does not answer like Bybit v5 (HTTP 404 on a v5 path): stop."""

    reaction = "fatal: stop the run (check [bybit] rest_url / network)"


class OrderRejected(BybitError):
    """The venue refused this order; `reason` is what the engine records."""

    reaction = "reject the order with the venue's reason"

    @property
    def reason(self) -> str:
        return f"{self.message} (Bybit {self.code})"


class InsufficientBalance(OrderRejected):
    pass


class InvalidQuantity(OrderRejected):
    pass


class InvalidPrice(OrderRejected):
    pass


class InvalidRequest(OrderRejected):
    """Parameter errors (10001): a bug or an unsupported value; never retried."""


class OrderNotFound(BybitError):
    reaction = "read the order's state back from the venue"


class OrderNotOpen(OrderNotFound):
    """Already filled or cancelled: a cancel or amend arrived too late."""


class DuplicateOrder(BybitError):
    reaction = "the order already exists at the venue: read it back, never place it twice"


class NotModified(BybitError):
    """The setting already has the asked value (leverage, margin mode, TP/SL): success."""

    reaction = "nothing to do: the venue already holds this value"


class AccountSetupError(BybitError, FatalError):
    """The account cannot be put in the configured leverage or margin mode: trading with other
    margin rules than the configuration's would size every position wrongly; stop."""

    reaction = "fatal: stop the run (check [symbols.X] leverage / margin_mode and the account)"


# retCode -> class. Anything not here is a plain `BybitError` (or `OrderRejected` for an order).
CODES: dict[int, type[BybitError]] = {
    10000: Transient,  # server timeout
    10016: Transient,  # server error / restarting
    10019: Transient,  # service restarting
    10002: ClockSkew,  # timestamp outside recv_window
    10006: RateLimited,  # too many visits (per-UID limit)
    10018: RateLimited,  # IP rate limit
    10429: RateLimited,  # system-level frequency protection
    10003: CredentialsError,  # API key invalid (or wrong network)
    10004: CredentialsError,  # bad signature
    10005: CredentialsError,  # permission denied
    10007: CredentialsError,  # user authentication failed
    10008: CredentialsError,  # banned / wrong account mode
    10009: CredentialsError,  # IP banned
    10010: CredentialsError,  # IP not in the key's whitelist
    10020: CredentialsError,  # not a unified account
    10027: CredentialsError,  # transactions banned
    33004: CredentialsError,  # API key expired (derivatives)
    -2015: CredentialsError,  # API key expired (spot)
    10001: InvalidRequest,  # parameter error (qty/price format, missing field)
    10029: InvalidRequest,  # symbol not allowed / invalid
    110001: OrderNotFound,
    170213: OrderNotFound,  # spot: order does not exist
    110008: OrderNotOpen,  # order already finished or cancelled
    110010: OrderNotOpen,  # order already cancelled
    110003: InvalidPrice,  # price out of the permitted range
    170134: InvalidPrice,  # spot: price decimals too long
    110004: InsufficientBalance,
    110006: InsufficientBalance,
    110007: InsufficientBalance,  # available balance not enough for the new order
    110012: InsufficientBalance,
    110044: InsufficientBalance,  # available margin insufficient
    170131: InsufficientBalance,  # spot: balance insufficient
    110017: InvalidQuantity,  # reduce-only / qty truncated to zero
    110094: InvalidQuantity,  # below the minimum order value
    170136: InvalidQuantity,  # spot: quantity below minimum
    170137: InvalidQuantity,  # spot: quantity decimals too long
    170140: InvalidQuantity,  # spot: value below minimum
    110020: OrderRejected,  # too many open orders
    110021: OrderRejected,  # open-interest position limit
    110040: OrderRejected,  # would trigger liquidation
    110072: DuplicateOrder,  # orderLinkId already used
    10014: DuplicateOrder,  # duplicate request
    110043: NotModified,  # set leverage not modified
    34040: NotModified,  # trading-stop: not modified
    110026: NotModified,  # cross/isolated margin mode not modified (classic accounts)
    110013: AccountSetupError,  # cannot set leverage: the risk limit level forbids it
    3400045: AccountSetupError,  # set margin mode failed (its reasons say why)
}


def from_code(code: int, message: str, request: str = "", *, order: bool = False) -> BybitError:
    """The typed error for a non-zero retCode. `order`: unknown codes reject the order."""
    cls = CODES.get(code)
    if cls is None:
        cls = OrderRejected if order else BybitError
    return cls(code, message, request)


def from_http_status(status: int, text: str, request: str = "") -> BybitError:
    """HTTP-level failures, before any retCode: Bybit uses 403 for its IP limit."""
    snippet = " ".join(text.split())[:200]
    if status in (403, 429):
        return RateLimited(status, f"HTTP {status}: rate limited ({snippet})", request)
    if status == 401:
        return CredentialsError(status, f"HTTP 401: API key refused ({snippet})", request)
    if status == 404:
        return EndpointError(
            status,
            f"HTTP 404: no such endpoint; is the REST URL a Bybit v5 API? ({snippet})",
            request,
        )
    if status >= 500:
        return Transient(status, f"HTTP {status}: server error ({snippet})", request)
    return BybitError(status, f"HTTP {status}: {snippet}", request)
