"""Who may do what: reading is open on loopback, the kill switch needs the token.

- `LORABOT_API_TOKEN` (environment only, like every secret) is the one credential. It is sent as
  `Authorization: Bearer <token>` and compared with `hmac.compare_digest`, in constant time, so
  the answer's timing says nothing about how much of a guess was right.
- Without a token the kill switch answers 401, and binding to anything but loopback is refused
  at start-up: a dashboard of positions and decisions is not for the whole network.
- With a token and a non-loopback bind, every request needs it (reads too).
"""

from __future__ import annotations

import hmac
import ipaddress

from bot.errors import UserError

TOKEN_ENV = "LORABOT_API_TOKEN"


def split_listen(listen: str) -> tuple[str, int]:
    host, _, port = listen.rpartition(":")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def check_bind(listen: str, token: str | None) -> None:
    """Refuse a non-loopback bind without a token: one line naming the key and the remedy."""
    host, _ = split_listen(listen)
    if not is_loopback(host) and not token:
        raise UserError(
            f"[api] listen = {listen!r} is not a loopback address: set {TOKEN_ENV} (the console "
            "then asks every request for it) or listen on 127.0.0.1"
        )


def bearer_ok(header: str | None, token: str | None) -> bool:
    """True when `header` is `Bearer <token>`; never true without a configured token."""
    if not token or not header:
        return False
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
