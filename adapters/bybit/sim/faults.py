"""Faults the simulator can be told to inject, so that recovery can be tested over real sockets.

Each fault is armed for a count or a duration and disarms itself. Tests in the same process call
these methods directly; a test (or a user) with the simulator in another process posts the same
names to `POST /sim/fault`, e.g. `{"name": "rest_error", "path": "/v5/order/create",
"code": 10006, "count": 2}`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

KINDS = ("public", "private")


@dataclass
class RestError:
    path: str
    code: int
    count: int
    message: str = ""
    http_status: int = 200


@dataclass
class RestDelay:
    seconds: float
    count: int
    path: str = ""
    process_first: bool = True  # the request takes effect, only the answer is late


@dataclass
class Faults:
    rest_errors: list[RestError] = field(default_factory=list)
    rest_delays: list[RestDelay] = field(default_factory=list)
    reject_ws_until: float = 0.0
    silence_until: dict[str, float] = field(default_factory=dict)
    malformed: dict[str, int] = field(default_factory=dict)
    ws_delay: dict[str, tuple[float, int]] = field(default_factory=dict)
    duplicate_executions: int = 0
    drop_executions: int = 0
    reorder_private: int = 0

    # -- arming ----------------------------------------------------------------------------------

    def fail_rest(
        self, path: str, code: int, count: int = 1, message: str = "", http_status: int = 200
    ) -> None:
        """The next `count` calls to `path` answer `code` without taking effect."""
        self.rest_errors.append(RestError(path, code, count, message, http_status))

    def delay_rest(
        self, seconds: float, count: int = 1, path: str = "", process_first: bool = True
    ) -> None:
        self.rest_delays.append(RestDelay(seconds, count, path, process_first))

    def reject_ws(self, seconds: float) -> None:
        """Websocket handshakes fail (HTTP 503) for `seconds`."""
        self.reject_ws_until = time.monotonic() + seconds

    def silence(self, kind: str, seconds: float) -> None:
        """Connections of `kind` get nothing, pongs included, for `seconds` (a half-open link)."""
        self.silence_until[kind] = time.monotonic() + seconds

    def send_malformed(self, kind: str, count: int = 1) -> None:
        self.malformed[kind] = self.malformed.get(kind, 0) + count

    def delay_ws(self, kind: str, seconds: float, count: int = 1) -> None:
        self.ws_delay[kind] = (seconds, count)

    # -- consulted by the server -------------------------------------------------------------------

    def take_rest_error(self, path: str) -> RestError | None:
        for fault in self.rest_errors:
            if fault.path in ("", path) and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self.rest_errors.remove(fault)
                return fault
        return None

    def take_rest_delay(self, path: str) -> RestDelay | None:
        for fault in self.rest_delays:
            if fault.path in ("", path) and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self.rest_delays.remove(fault)
                return fault
        return None

    def ws_rejected(self) -> bool:
        return time.monotonic() < self.reject_ws_until

    def silenced(self, kind: str) -> bool:
        return time.monotonic() < self.silence_until.get(kind, 0.0)

    def take_malformed(self, kind: str) -> bool:
        if self.malformed.get(kind, 0) > 0:
            self.malformed[kind] -= 1
            return True
        return False

    def take_ws_delay(self, kind: str) -> float:
        seconds, count = self.ws_delay.get(kind, (0.0, 0))
        if count <= 0:
            return 0.0
        self.ws_delay[kind] = (seconds, count - 1)
        return seconds

    def apply(self, spec: dict[str, Any]) -> None:
        """Arm a fault from its JSON form (the admin endpoint)."""
        name = spec.get("name")
        if name == "rest_error":
            self.fail_rest(
                str(spec.get("path", "")),
                int(spec["code"]),
                int(spec.get("count", 1)),
                str(spec.get("message", "")),
                int(spec.get("http_status", 200)),
            )
        elif name == "rest_delay":
            self.delay_rest(
                float(spec["seconds"]),
                int(spec.get("count", 1)),
                str(spec.get("path", "")),
                bool(spec.get("process_first", True)),
            )
        elif name == "reject_ws":
            self.reject_ws(float(spec["seconds"]))
        elif name == "silence":
            self.silence(_kind(spec), float(spec["seconds"]))
        elif name == "malformed":
            self.send_malformed(_kind(spec), int(spec.get("count", 1)))
        elif name == "ws_delay":
            self.delay_ws(_kind(spec), float(spec["seconds"]), int(spec.get("count", 1)))
        elif name == "duplicate_executions":
            self.duplicate_executions += int(spec.get("count", 1))
        elif name == "drop_executions":
            self.drop_executions += int(spec.get("count", 1))
        elif name == "reorder_private":
            self.reorder_private += int(spec.get("count", 1))
        else:
            raise ValueError(f"unknown fault {name!r}")


def _kind(spec: dict[str, Any]) -> str:
    kind = str(spec.get("kind", "public"))
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    return kind
