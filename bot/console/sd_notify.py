"""systemd's notify protocol: one datagram per message to the socket named by `NOTIFY_SOCKET`.

`lorabot run --sd-notify` sends `READY=1` once the engine runs, `STATUS=` lines as it goes, and
`WATCHDOG=1` from the main loop's tick, so a stuck loop stops the pings and systemd (with
`WatchdogSec=`) restarts the service. The protocol is small enough to speak directly: a
`SOCK_DGRAM` Unix socket, a path or, with a leading `@`, an abstract-namespace name.
Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.
"""

from __future__ import annotations

import os
import socket

from bot.log import get_logger

log = get_logger("bot.console.sd_notify")


class SdNotifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self._socket: socket.socket | None = None
        self._failed = False
        if self.address:
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._socket.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._socket is not None

    def _target(self) -> str | bytes:
        address = self.address or ""
        return b"\0" + address[1:].encode() if address.startswith("@") else address

    def send(self, *lines: str) -> bool:
        """Send `KEY=value` lines in one datagram; False (logged once) if it cannot be sent."""
        if self._socket is None:
            return False
        try:
            self._socket.sendto("\n".join(lines).encode(), self._target())
            return True
        except OSError as error:
            if not self._failed:
                self._failed = True
                log.warning("sd_notify: cannot reach NOTIFY_SOCKET", error=str(error))
            return False

    def ready(self, status: str = "") -> bool:
        return self.send("READY=1", *((f"STATUS={status}",) if status else ()))

    def status(self, text: str) -> bool:
        return self.send(f"STATUS={text}")

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self) -> bool:
        return self.send("STOPPING=1")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
