"""Bybit v5 HMAC signatures and the clock offset they are computed with.

Bybit refuses a signed request whose timestamp is outside
`server_time - recv_window <= timestamp < server_time + 1000` (error 10002). A host clock a
second fast is therefore enough to lose every order, so lorabot measures the offset to
`/v5/market/time` and signs with the venue's time, not the local one. pybit signs with the local
clock and has no hook for an offset, which is one reason this module exists.
"""

from __future__ import annotations

import hashlib
import hmac

from bot.clock import Clock


def sign(secret: str, text: str) -> str:
    """Hex HMAC-SHA256, the form Bybit's `X-BAPI-SIGN` and websocket auth expect."""
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def rest_signature(
    secret: str, timestamp: int, api_key: str, recv_window: int, payload: str
) -> str:
    """`payload` is the raw query string of a GET or the raw JSON body of a POST, as sent."""
    return sign(secret, f"{timestamp}{api_key}{recv_window}{payload}")


def ws_auth_signature(secret: str, expires: int) -> str:
    return sign(secret, f"GET/realtime{expires}")


class VenueClock:
    """The injected clock's time corrected by the measured offset to the venue, in milliseconds.

    `offset_ms` is venue minus local. It is measured from one round trip (the venue's time is
    taken to be at the midpoint), which is accurate to half the round trip: far inside Bybit's
    default 5 s window. "Local" is the run's `Clock` (bot/clock.py), never the system clock read
    here, so a signature's timestamp comes from the same time as every event and record.
    """

    def __init__(self, clock: Clock, offset_ms: int = 0) -> None:
        self.clock = clock
        self.offset_ms = offset_ms
        self.measured = False

    def local_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def now_ms(self) -> int:
        return self.local_ms() + self.offset_ms

    def update(self, sent_ms: int, venue_ms: int, received_ms: int) -> int:
        self.offset_ms = int(venue_ms - (sent_ms + received_ms) / 2)
        self.measured = True
        return self.offset_ms
