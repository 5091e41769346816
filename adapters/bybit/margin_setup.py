"""Leverage and margin mode on Bybit: set at start in live mode, checked on reconciliation.

`[symbols.X] leverage` and `margin_mode` decide how much margin a position ties up and where
it is liquidated; paper mode applies them itself (strategies/margin.py), live mode must make the
venue hold the same, or the engine's margin arithmetic and Bybit's would disagree.

- Leverage: `POST /v5/position/set-leverage` per linear symbol (buy and sell leverage equal, as
  one-way mode requires). 110043 ("leverage not modified") means it already is: success.
- Margin mode, on a unified trading account (UTA, the only kind the simulator and lorabot's
  default `account_type` know): account-wide, `POST /v5/account/set-margin-mode` with
  `ISOLATED_MARGIN` or `REGULAR_MARGIN` (cross), read back from `GET /v5/account/info`
  (`marginMode`). `/v5/position/switch-isolated` is per symbol but for classic accounts only
  (UTA 2.0 refuses it), so on a UTA every linear symbol must ask for the same mode: mixed
  modes are refused at start with the keys named. An account in `PORTFOLIO_MARGIN` is a
  cross-margin account already and is left as it is for `margin_mode = "cross"`.

Reconciliation reads the position list's `leverage` (and the account's margin mode) again; a
difference (someone changed it in the web UI) is logged and set back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from adapters.bybit import errors
from adapters.bybit.parse import VenuePosition
from adapters.bybit.rest import BybitRest
from bot.config import Settings
from bot.errors import UserError
from bot.log import get_logger

log = get_logger(__name__)

VENUE_MODE = {"isolated": "ISOLATED_MARGIN", "cross": "REGULAR_MARGIN"}
CROSS_MODES = ("REGULAR_MARGIN", "PORTFOLIO_MARGIN")


@dataclass(frozen=True, slots=True)
class MarginPlan:
    """What the configuration asks of the venue: leverage per linear symbol and one mode."""

    leverage: Mapping[str, Decimal]
    mode: str  # "isolated" / "cross" / "" (nothing to set: spot, or no linear symbol)

    @classmethod
    def from_settings(cls, settings: Settings, symbols: Iterable[str]) -> MarginPlan:
        if settings.bybit.category != "linear":
            return cls({}, "")
        leverage: dict[str, Decimal] = {}
        modes: dict[str, str] = {}
        for name in symbols:
            config = settings.symbols.get(name)
            if config is None or config.category != "linear":
                continue
            leverage[name] = config.leverage
            modes[name] = config.margin_mode
        if len(set(modes.values())) > 1:
            listed = ", ".join(f"[symbols.{k}] margin_mode = {v!r}" for k, v in modes.items())
            raise UserError(
                "a Bybit unified account has one margin mode for all its perpetuals, but the "
                f"configuration asks for several: {listed}"
            )
        return cls(leverage, next(iter(modes.values()), ""))

    def satisfied_by(self, venue_mode: str) -> bool:
        if self.mode == "cross":
            return venue_mode in CROSS_MODES
        return venue_mode == VENUE_MODE.get(self.mode, venue_mode)


class MarginSetup:
    """Puts the account in the plan's margin mode and each symbol at its leverage."""

    def __init__(self, rest: BybitRest, plan: MarginPlan, account_type: str) -> None:
        self.rest = rest
        self.plan = plan
        self.account_type = account_type
        self.leverage_sets = 0  # set-leverage calls that changed something (tests, status)

    async def apply(self) -> None:
        """At start: the margin mode first (it may reset leverage), then every leverage."""
        if self.plan.mode:
            await self.ensure_mode()
        for symbol, leverage in self.plan.leverage.items():
            await self.set_leverage(symbol, leverage)

    async def ensure_mode(self) -> None:
        if self.account_type != "UNIFIED":
            log.warning(
                "bybit: margin mode not set (lorabot sets it on unified accounts only)",
                account_type=self.account_type,
                wanted=self.plan.mode,
            )
            return
        info = await self.rest.request("GET", "/v5/account/info", signed=True)
        venue_mode = str(info.get("marginMode") or "")
        if self.plan.satisfied_by(venue_mode):
            return
        wanted = VENUE_MODE[self.plan.mode]
        log.info("bybit: setting the account's margin mode", venue=venue_mode, wanted=wanted)
        try:
            await self.rest.request(
                "POST", "/v5/account/set-margin-mode", {"setMarginMode": wanted}, signed=True
            )
        except errors.NotModified:
            return

    async def set_leverage(self, symbol: str, leverage: Decimal) -> None:
        text = _plain(leverage)
        try:
            await self.rest.request(
                "POST",
                "/v5/position/set-leverage",
                {
                    "category": "linear",
                    "symbol": symbol,
                    "buyLeverage": text,
                    "sellLeverage": text,
                },
                signed=True,
            )
        except errors.NotModified:
            return
        except errors.OrderRejected as error:  # 10001 out of range, 110012 margin insufficient
            raise errors.AccountSetupError(
                error.code,
                f"[symbols.{symbol}] leverage = {text} refused by Bybit: {error.message}",
                error.request,
            ) from None
        self.leverage_sets += 1
        log.info("bybit: leverage set", symbol=symbol, leverage=text)

    async def check(self, positions: Mapping[str, VenuePosition]) -> None:
        """On reconciliation: set back a leverage (or margin mode) someone else changed."""
        for symbol, wanted in self.plan.leverage.items():
            position = positions.get(symbol)
            if position is None or position.leverage is None or position.leverage == wanted:
                continue
            log.warning(
                "bybit: leverage differs from the configuration; setting it back",
                symbol=symbol,
                venue=str(position.leverage),
                wanted=str(wanted),
            )
            await self.set_leverage(symbol, wanted)
        if self.plan.mode:
            await self.ensure_mode()


def _plain(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
