"""Whether Bybit's REST API is answering, as the operator's console shows it.

Only a call that got no usable answer (network, 5xx, rate limit after its retries, bad
credentials, a wrong endpoint) says the link is down; an order's rejection, an unknown order or
"not modified" is the venue answering, so the link stays up."""

from __future__ import annotations

from adapters.bybit import errors
from bot.protocols import LinkState

_NO_ANSWER = (errors.Transient, errors.CredentialsError, errors.EndpointError)


class RestHealth:
    def __init__(self) -> None:
        self.failures = 0  # calls that failed after their retries
        self.last_error: str | None = None
        self.up = True

    def answered(self) -> None:
        self.up = True

    def failed(self, path: str, error: errors.BybitError) -> None:
        if isinstance(error, _NO_ANSWER):
            self.failures += 1
            self.last_error = f"{path}: {error}"
            self.up = False

    def link(self, base_url: str, calls: int) -> LinkState:
        return LinkState(
            name="bybit rest",
            target=base_url,
            up=self.up,
            messages=calls,
            errors=self.failures,
            last_error=self.last_error,
        )
