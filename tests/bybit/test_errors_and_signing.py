"""Error mapping (every code in the table), signatures (equal to pybit's), endpoints by network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pybit._http_manager import generate_signature

from adapters.bybit import errors
from adapters.bybit.endpoints import endpoints, is_real_money_url
from adapters.bybit.factory import mainnet_summary, require_mainnet_confirmation
from adapters.bybit.signing import VenueClock, rest_signature, ws_auth_signature
from bot.clock import ReplayClock
from bot.config import Settings
from bot.errors import FatalError, TransientError, UserError

REACTIONS = {
    errors.Transient: "retry with backoff",
    errors.RateLimited: "wait until Bybit's rate-limit window resets, then retry",
    errors.ClockSkew: "measure the clock offset again, then retry",
    errors.CredentialsError: "fatal: stop the run",
    errors.InvalidRequest: "reject the order with the venue's reason",
    errors.InsufficientBalance: "reject the order with the venue's reason",
    errors.InvalidQuantity: "reject the order with the venue's reason",
    errors.InvalidPrice: "reject the order with the venue's reason",
    errors.OrderRejected: "reject the order with the venue's reason",
    errors.OrderNotFound: "read the order's state back from the venue",
    errors.OrderNotOpen: "read the order's state back from the venue",
    errors.DuplicateOrder: "the order already exists at the venue: read it back, never place "
    "it twice",
    errors.NotModified: "nothing to do: the venue already holds this value",
    errors.AccountSetupError: "fatal: stop the run (check [symbols.X] leverage / margin_mode and "
    "the account)",
}


@pytest.mark.parametrize(("code", "cls"), sorted(errors.CODES.items()))
def test_every_mapped_code_gets_its_class_and_reaction(
    code: int, cls: type[errors.BybitError]
) -> None:
    error = errors.from_code(code, "message from Bybit", "POST /v5/order/create", order=True)
    assert type(error) is cls
    assert error.code == code and "message from Bybit" in str(error)
    assert error.reaction == REACTIONS[cls]
    assert isinstance(error, FatalError) == (
        cls in (errors.CredentialsError, errors.AccountSetupError)
    )
    assert isinstance(error, TransientError) == issubclass(cls, errors.Transient)


def test_the_four_named_reactions() -> None:
    assert isinstance(errors.from_code(10006, "Too many visits!"), errors.RateLimited)
    assert isinstance(errors.from_code(10002, "req_timestamp"), errors.ClockSkew)
    rejected = errors.from_code(110007, "ab not enough for new order", order=True)
    assert isinstance(rejected, errors.InsufficientBalance)
    assert rejected.reason == "ab not enough for new order (Bybit 110007)"
    fatal = errors.from_code(10003, "API key is invalid.")
    assert isinstance(fatal, FatalError) and isinstance(fatal, UserError)


def test_unknown_codes_reject_orders_and_fail_other_requests() -> None:
    assert type(errors.from_code(123456, "new", order=True)) is errors.OrderRejected
    assert type(errors.from_code(123456, "new")) is errors.BybitError


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (403, errors.RateLimited),
        (429, errors.RateLimited),
        (401, errors.CredentialsError),
        (404, errors.EndpointError),
        (502, errors.Transient),
        (418, errors.BybitError),
    ],
)
def test_http_statuses(status: int, cls: type[errors.BybitError]) -> None:
    assert type(errors.from_http_status(status, "<html>body</html>", "GET /v5/x")) is cls


def test_signatures_equal_pybits() -> None:
    payload = '{"category":"linear","symbol":"BTCUSDT","side":"Buy","qty":"0.001"}'
    ours = rest_signature("sim-secret", 1704067200000, "sim-key", 5000, payload)
    theirs = generate_signature(False, "sim-secret", f"1704067200000sim-key5000{payload}")
    assert ours == theirs
    assert ws_auth_signature("s", 1704067200000) == generate_signature(
        False, "s", "GET/realtime1704067200000"
    )


def test_clock_offset_is_venue_minus_local_at_the_round_trip_midpoint() -> None:
    local = ReplayClock(datetime(2024, 1, 1, tzinfo=UTC))
    clock = VenueClock(local)
    assert clock.local_ms() == 1704067200000  # the injected clock, not the system's
    assert clock.update(sent_ms=1000, venue_ms=6100, received_ms=1200) == 5000
    assert clock.measured
    assert clock.now_ms() == 1704067200000 + 5000


@pytest.mark.parametrize(
    ("network", "rest", "public", "private"),
    [
        (
            "demo",
            "https://api-demo.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream-demo.bybit.com/v5/private",
        ),
        (
            "testnet",
            "https://api-testnet.bybit.com",
            "wss://stream-testnet.bybit.com/v5/public/linear",
            "wss://stream-testnet.bybit.com/v5/private",
        ),
        (
            "mainnet",
            "https://api.bybit.com",
            "wss://stream.bybit.com/v5/public/linear",
            "wss://stream.bybit.com/v5/private",
        ),
    ],
)
def test_endpoints_by_network(network: str, rest: str, public: str, private: str) -> None:
    urls = endpoints(Settings().with_overrides(bybit={"network": network}))
    assert (urls.rest, urls.ws_public, urls.ws_private) == (rest, public, private)
    assert urls.is_mainnet == (network == "mainnet")


def test_rest_url_override_carries_the_websockets_to_the_same_host() -> None:
    settings = Settings().with_overrides(
        bybit={"network": "mainnet", "category": "spot", "rest_url": "http://127.0.0.1:8765/"}
    )
    urls = endpoints(settings)
    assert urls.rest == "http://127.0.0.1:8765"
    assert urls.ws_public == "ws://127.0.0.1:8765/v5/public/spot"
    assert urls.ws_private == "ws://127.0.0.1:8765/v5/private"
    assert not urls.is_mainnet
    explicit = endpoints(
        Settings().with_overrides(
            bybit={"ws_public_url": "wss://stream.bytick.com/v5/public/linear"}
        )
    )
    assert explicit.ws_public == "wss://stream.bytick.com/v5/public/linear"
    with pytest.raises(UserError, match="rest_url"):
        endpoints(Settings().with_overrides(bybit={"rest_url": "127.0.0.1:8765"}))


def test_mainnet_needs_the_confirmation_flag_and_says_what_it_will_do() -> None:
    settings = Settings().with_overrides(bybit={"network": "mainnet"})
    with pytest.raises(UserError, match="--confirm-mainnet"):
        require_mainnet_confirmation(settings, confirmed=False)
    require_mainnet_confirmation(settings, confirmed=True)
    require_mainnet_confirmation(Settings(), confirmed=False)  # demo needs no flag
    summary = mainnet_summary(settings, ["BTCUSDT"])
    assert "REAL MONEY" in summary and "https://api.bybit.com" in summary
    assert "BTCUSDT" in summary and "kill switch" in summary


# -- the real-money predicate (issue 11.1) -------------------------------------------------------

_REAL_REST = "https://api.bybit.com"
_DEMO_REST = "https://api-demo.bybit.com"
_LOOP_REST = "http://127.0.0.1:8765"
_REST_OVERRIDES = {"": None, "real": _REAL_REST, "loopback": _LOOP_REST, "demo": _DEMO_REST}
_PUBLIC_OVERRIDES = {
    "": None,
    "real": "wss://stream.bybit.com/v5/public/linear",
    "loopback": "ws://127.0.0.1:8765/v5/public/linear",
    "demo": "wss://stream-testnet.bybit.com/v5/public/linear",
}
_PRIVATE_OVERRIDES = {
    "": None,
    "real": "wss://stream.bybit.com/v5/private",
    "loopback": "ws://localhost:8765/v5/private",
    "demo": "wss://stream-demo.bybit.com/v5/private",
}


def _expected_real_money(network: str, rest: str, private: str) -> bool:
    """The rule written out: where orders (REST) and account updates (private ws) go."""
    rest_real = rest == "real" or (rest == "" and network == "mainnet")
    if private:
        private_real = private == "real"
    elif rest:  # rest_url alone carries the private stream to the same host
        private_real = rest == "real"
    else:
        private_real = network == "mainnet"
    return rest_real or private_real


@pytest.mark.parametrize("network", ["mainnet", "demo", "testnet"])
@pytest.mark.parametrize("rest", list(_REST_OVERRIDES))
@pytest.mark.parametrize("public", list(_PUBLIC_OVERRIDES))
@pytest.mark.parametrize("private", list(_PRIVATE_OVERRIDES))
def test_real_money_is_decided_by_the_resolved_hosts(
    network: str, rest: str, public: str, private: str
) -> None:
    overrides = {
        key: value
        for key, value in (
            ("rest_url", _REST_OVERRIDES[rest]),
            ("ws_public_url", _PUBLIC_OVERRIDES[public]),
            ("ws_private_url", _PRIVATE_OVERRIDES[private]),
        )
        if value
    }
    settings = Settings().with_overrides(bybit={"network": network, **overrides})
    expected = _expected_real_money(network, rest, private)
    urls = endpoints(settings)
    assert urls.is_real_money is expected
    assert urls.is_mainnet is expected  # the daemon's name for the same predicate
    if expected:
        with pytest.raises(UserError, match="--confirm-mainnet"):
            require_mainnet_confirmation(settings, confirmed=False)
    else:
        require_mainnet_confirmation(settings, confirmed=False)
    require_mainnet_confirmation(settings, confirmed=True)


def test_the_cases_issue_11_names() -> None:
    demo_on_mainnet_rest = Settings().with_overrides(
        bybit={"network": "demo", "rest_url": "https://api.bybit.com"}
    )
    with pytest.raises(UserError, match="--confirm-mainnet"):
        require_mainnet_confirmation(demo_on_mainnet_rest, confirmed=False)
    mainnet_public_only = Settings().with_overrides(
        bybit={"network": "mainnet", "ws_public_url": "ws://127.0.0.1:9/v5/public/linear"}
    )
    with pytest.raises(UserError, match="--confirm-mainnet"):
        require_mainnet_confirmation(mainnet_public_only, confirmed=False)
    assert "REAL MONEY" in mainnet_summary(mainnet_public_only, ["BTCUSDT"])


@pytest.mark.parametrize(
    ("url", "real"),
    [
        ("http://127.0.0.1:1", False),
        ("http://127.8.9.10:1", False),
        ("http://[::1]:8765", False),
        ("http://localhost:8765", False),
        ("https://api-demo.bybit.com", False),
        ("https://API-TESTNET.bybit.com.", False),
        ("https://api.bybit.com", True),
        ("https://api.bytick.com", True),
        ("https://api-demo.bybit.com.evil.example", True),
        ("http://10.0.0.5:8765", True),
        ("http://128.0.0.1:8765", True),
    ],
)
def test_which_hosts_are_play_money(url: str, real: bool) -> None:
    assert is_real_money_url(url) is real
