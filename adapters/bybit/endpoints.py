"""Where each Bybit network lives, and how config overrides (the local simulator) replace it.

Demo trading has its own REST host and private stream but no public stream of its own: Bybit
serves demo accounts mainnet's public market data, so `demo` streams prices from mainnet.
Setting only `rest_url` (how the simulator is addressed) puts both websockets on that same host
with Bybit's paths, because the simulator serves everything on one port.

Whether a run trades real money is decided from where its orders and account stream actually go
(the resolved REST and private websocket hosts), never from the `network` name: `network =
"demo"` with `rest_url` pointing at api.bybit.com trades real money, and `network = "mainnet"`
with only a public-stream override still does. Only loopback and Bybit's demo and testnet hosts
are play money; any other host (a proxy, a mirror domain, a typo) is treated as real.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from bot.config import BybitConfig, Settings
from bot.errors import UserError

_NETWORKS: dict[str, tuple[str, str, str]] = {
    # network: (REST, public websocket base, private websocket)
    "mainnet": (
        "https://api.bybit.com",
        "wss://stream.bybit.com/v5/public",
        "wss://stream.bybit.com/v5/private",
    ),
    "testnet": (
        "https://api-testnet.bybit.com",
        "wss://stream-testnet.bybit.com/v5/public",
        "wss://stream-testnet.bybit.com/v5/private",
    ),
    "demo": (
        "https://api-demo.bybit.com",
        "wss://stream.bybit.com/v5/public",
        "wss://stream-demo.bybit.com/v5/private",
    ),
}


# Hosts whose accounts hold no real money. Bybit's demo and testnet hosts (any of their regional
# mirrors are not listed: an unknown host counts as real money, the safe direction).
PLAY_MONEY_HOSTS = frozenset(
    {
        "api-demo.bybit.com",
        "stream-demo.bybit.com",
        "api-testnet.bybit.com",
        "stream-testnet.bybit.com",
    }
)


def is_loopback_host(host: str) -> bool:
    """127.0.0.0/8, ::1 and localhost: the local simulator, never an exchange."""
    host = host.strip("[]").lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_real_money_url(url: str) -> bool:
    """True unless the URL's host is loopback or one of Bybit's demo/testnet hosts."""
    host = (urlsplit(url).hostname or "").lower().rstrip(".")
    return not (is_loopback_host(host) or host in PLAY_MONEY_HOSTS)


@dataclass(frozen=True, slots=True)
class Endpoints:
    rest: str
    ws_public: str  # already ends with the category, e.g. .../v5/public/linear
    ws_private: str
    network: str
    overridden: bool

    @property
    def is_real_money(self) -> bool:
        """The one predicate every mainnet rule uses (see the module docstring)."""
        return is_real_money_url(self.rest) or is_real_money_url(self.ws_private)

    @property
    def is_mainnet(self) -> bool:
        """The name the daemon and the factory know `is_real_money` by."""
        return self.is_real_money


def _ws_from_rest(rest_url: str, path: str) -> str:
    parts = urlsplit(rest_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _check_url(key: str, url: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(url)
    if parts.scheme not in schemes or not parts.netloc:
        raise UserError(
            f"[bybit] {key} = {url!r} is not a URL ({' or '.join(schemes)}://host[:port]...)"
        )
    return url.rstrip("/")


def endpoints(config: BybitConfig | Settings) -> Endpoints:
    """The REST and websocket URLs this configuration talks to."""
    bybit = config.bybit if isinstance(config, Settings) else config
    rest, public, private = _NETWORKS[bybit.network]
    overridden = bool(bybit.rest_url or bybit.ws_public_url or bybit.ws_private_url)
    if bybit.rest_url:
        rest = _check_url("rest_url", bybit.rest_url, ("http", "https"))
        public = _ws_from_rest(rest, "/v5/public")
        private = _ws_from_rest(rest, "/v5/private")
    if bybit.ws_public_url:
        public = _check_url("ws_public_url", bybit.ws_public_url, ("ws", "wss"))
    if bybit.ws_private_url:
        private = _check_url("ws_private_url", bybit.ws_private_url, ("ws", "wss"))
    category = bybit.category
    if not public.endswith(("/linear", "/spot", "/inverse", "/option")):
        public = f"{public}/{category}"
    return Endpoints(rest, public, private, bybit.network, overridden)
