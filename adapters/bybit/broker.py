"""`BybitBroker`: the live broker, where paper mode has the paper broker.

Three parts, split along their seams:

- `mirror.py` (`OrderMirror`): the engine's orders as far as Bybit's messages say, reported as
  `OrderUpdate` and `Fill` events that the engine's state machine always accepts; no I/O;
- `reconcile.py` (`Reconciler`): read-backs over REST (restart, reconnect, poll, missed fills,
  lost answers, orders whose create may still be in flight);
- this module: the `Broker` face, sending orders, and the private stream's lifecycle.

Orders are sent with `orderLinkId` = the client order id the engine stored first, so a request
whose answer was lost (timeout) is read back by that id and never placed twice; a create that
Bybit refuses with 110072 (duplicate link id) is read back too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.bybit import errors
from adapters.bybit.endpoints import Endpoints, endpoints
from adapters.bybit.fields import VENUE_ORDER_TYPE, VENUE_SIDE
from adapters.bybit.margin_setup import MarginPlan, MarginSetup
from adapters.bybit.mirror import BrokerStats, OrderMirror, TrackedOrder
from adapters.bybit.parse import Execution, VenueOrder, VenuePosition, Wallet
from adapters.bybit.private import BybitPrivateStream
from adapters.bybit.protective import ProtectionDesk
from adapters.bybit.reconcile import Reconciler
from adapters.bybit.rest import BybitRest
from bot.clock import Clock
from bot.config import Secrets, Settings
from bot.errors import FatalError
from bot.events import Bar, OrderType, Side, Ticker, Trade
from bot.log import get_logger
from bot.orders import Order, OrderStatus
from bot.protocols import Emit, LinkState, Protection, VenueState
from bot.symbols import Instrument

log = get_logger(__name__)

S = OrderStatus
MAX_LINK_ID = 36


class BybitBroker:
    """Market and limit orders, amend and cancel on Bybit v5, reported through `emit`."""

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        instruments: Mapping[str, Instrument],
        clock: Clock,
    ) -> None:
        if not secrets.complete:
            bybit = settings.bybit
            raise FatalError(
                f"live trading needs Bybit API keys: set {bybit.api_key_env} and "
                f"{bybit.api_secret_env} in the environment"
            )
        assert secrets.api_key is not None and secrets.api_secret is not None
        self.settings = settings
        self.config = settings.bybit
        self.category = self.config.category
        self.instruments = dict(instruments)
        self.endpoints: Endpoints = endpoints(settings)
        self.clock = clock
        self.rest = BybitRest(
            self.config,
            self.endpoints.rest,
            clock,
            api_key=secrets.api_key.get_secret_value(),
            api_secret=secrets.api_secret.get_secret_value(),
        )
        self.private = BybitPrivateStream(
            self.config,
            self.endpoints.ws_private,
            secrets.api_key.get_secret_value(),
            secrets.api_secret.get_secret_value(),
            self.rest.clock,
            self,
            lambda: self.rest.sync_clock(force=True),
        )
        self.mirror = OrderMirror(clock, self._now)
        self.mirror.emit = self._emit
        self._last_price: dict[str, Decimal] = {}
        self.reconciler = Reconciler(
            self.mirror, self.rest, self.config, self.instruments, self._last_price, self._spawn
        )
        self.protection = ProtectionDesk(
            self.rest, self.instruments, self.mirror.venue_positions, self._spawn
        )
        plan = MarginPlan.from_settings(settings, self.instruments)
        self.margin = MarginSetup(self.rest, plan, self.config.account_type)
        self.fatal_error: FatalError | None = None
        self.on_fatal: Callable[[BaseException], None] | None = None
        self._emit_fn: Emit | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._private_task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

    # -- the mirror's state, under the names the engine and tests know -----------------------------

    @property
    def needs_reconcile(self) -> bool:
        """Bybit changed the position outside lorabot's orders: the engine should reconcile."""
        return self.mirror.needs_reconcile

    @needs_reconcile.setter
    def needs_reconcile(self, value: bool) -> None:
        self.mirror.needs_reconcile = value

    @property
    def stats(self) -> BrokerStats:
        return self.mirror.stats

    @property
    def venue_positions(self) -> dict[str, VenuePosition]:
        return self.mirror.venue_positions

    @property
    def wallet(self) -> Wallet | None:
        return self.mirror.wallet

    def tracked_status(self, client_order_id: str) -> OrderStatus | None:
        """The state the engine holds for an order, as far as this broker reported it."""
        return self.mirror.status_of(client_order_id)

    # -- Broker protocol ---------------------------------------------------------------------------

    def bind(self, emit: Emit) -> None:
        self._emit_fn = emit

    async def start(self) -> None:
        """Measure the clock, check the keys, connect the private stream; raises FatalError."""
        self._loop = asyncio.get_running_loop()
        try:
            await self._connect()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        log.info(
            "bybit broker started",
            network=self.endpoints.network,
            rest=self.endpoints.rest,
            category=self.category,
            clock_offset_ms=self.rest.clock.offset_ms,
        )

    async def _connect(self) -> None:
        await self.rest.sync_clock(force=True)
        self.mirror.wallet = await self.rest.wallet()  # CredentialsError (fatal) on bad keys
        await self.margin.apply()  # [symbols.X] leverage and margin_mode (AccountSetupError)
        self._private_task = asyncio.create_task(self.private.run(), name="bybit-private")
        self._private_task.add_done_callback(self._private_done)
        ready = asyncio.create_task(self.private.connection.ready.wait())
        done, _ = await asyncio.wait(
            {ready, self._private_task},
            timeout=self.config.connect_timeout * 3,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if ready not in done:
            ready.cancel()
            if self._private_task in done:
                self._private_task.result()  # raises the fatal error
            log.warning("bybit private stream not connected yet; orders are polled meanwhile")
        self._timers = [
            asyncio.create_task(self.reconciler.poll_loop(), name="bybit-order-poll"),
            asyncio.create_task(self._clock_loop(), name="bybit-clock-sync"),
        ]

    async def stop(self) -> None:
        for task in [*self._timers, *self._tasks]:
            task.cancel()
        if self._private_task is not None:
            self._private_task.cancel()
        pending = [*self._timers, *self._tasks]
        if self._private_task is not None:
            pending.append(self._private_task)
        await asyncio.gather(*pending, return_exceptions=True)
        await self.rest.close()
        self._started = False

    def on_market(self, event: object) -> None:
        if isinstance(event, Trade):
            self._last_price[event.symbol] = event.price
        elif isinstance(event, Bar):
            self._last_price[event.symbol] = event.close
        elif isinstance(event, Ticker):
            price = event.last or (
                (event.bid + event.ask) / 2
                if event.bid is not None and event.ask is not None
                else None
            )
            if price is not None:
                self._last_price[event.symbol] = price

    def submit(self, order: Order) -> None:
        """Check the order against the instrument and send it; never blocks."""
        self._raise_if_fatal()
        if order.client_order_id in self.mirror.orders:
            log.warning("bybit: order submitted twice, ignored", order=order.client_order_id)
            return
        tracked = self.mirror.track(order)
        reason = self._local_check(order, tracked)
        if reason:
            self.stats.rejected_locally += 1
            log.warning(
                "bybit: order rejected before sending", order=order.client_order_id, reason=reason
            )
            self._later(self.mirror.set_status, tracked, S.REJECTED, reason)
            return
        self._spawn(self._place(tracked))

    def cancel(self, order: Order) -> None:
        tracked = self.mirror.track(order)
        if tracked.status.is_terminal:
            return
        if tracked.in_flight:
            tracked.cancel_requested = True  # sent as soon as the create is answered
            return
        self._spawn(self._cancel(tracked))

    def amend(
        self, order: Order, *, qty: Decimal | None = None, price: Decimal | None = None
    ) -> None:
        """Change an open order's quantity and/or limit price (reported back as an update)."""
        self._raise_if_fatal()
        tracked = self.mirror.orders.get(order.client_order_id)
        if tracked is None or tracked.status.is_terminal:
            log.warning("bybit: amend of an order that is not open", order=order.client_order_id)
            return
        instrument = self.instruments.get(order.symbol)
        params: dict[str, Any] = {
            "category": self.category,
            "symbol": order.symbol,
            "orderLinkId": order.client_order_id,
        }
        if qty is not None:
            params["qty"] = str(qty)
        if price is not None:
            sign = 1 if order.side is Side.BUY else -1
            params["price"] = str(instrument.round_price(price, sign) if instrument else price)
        self._spawn(self._amend(tracked, params))

    async def reconcile(self, known: Sequence[Order]) -> VenueState:
        """What Bybit says is true (see `Reconciler.reconcile`)."""
        self._raise_if_fatal()
        state = await self.reconciler.reconcile(known)
        await self.margin.check(self.mirror.venue_positions)
        await self.protection.check()
        return state

    def set_protection(self, symbol: str, protection: Protection) -> None:
        """The position's stop-loss / take-profit / trailing stop, kept on Bybit (protective.py)."""
        self._raise_if_fatal()
        self.protection.want(symbol, protection)

    # -- sending -----------------------------------------------------------------------------------

    def _local_check(self, order: Order, tracked: TrackedOrder) -> str:
        if len(order.client_order_id) > MAX_LINK_ID:
            return (
                f"client order id {order.client_order_id!r} is longer than Bybit's "
                f"{MAX_LINK_ID}-character orderLinkId limit"
            )
        instrument = self.instruments.get(order.symbol)
        if instrument is None:
            return f"no Bybit instrument rules for {order.symbol} (not fetched at start)"
        if order.qty <= 0:
            return f"quantity {order.qty} is not positive"
        if order.order_type is OrderType.LIMIT:
            if order.price is None or order.price <= 0:
                return "a limit order needs a positive price"
            tracked.price = instrument.round_price(order.price, order.side.sign)
            reference = tracked.price
        else:
            reference = self._last_price.get(order.symbol, Decimal("Infinity"))
        if self.category == "spot" and order.reduce_only and order.side is Side.BUY:
            return "a reduce-only buy on spot would close a short, and spot has none"
        return instrument.check(order.qty, reference) or ""

    def _order_params(self, tracked: TrackedOrder) -> dict[str, Any]:
        params: dict[str, Any] = {
            "category": self.category,
            "symbol": tracked.symbol,
            "side": VENUE_SIDE[tracked.side],
            "orderType": VENUE_ORDER_TYPE[tracked.order_type],
            "qty": str(tracked.qty),
            "orderLinkId": tracked.client_order_id,
        }
        if tracked.order_type is OrderType.LIMIT:
            params["price"] = str(tracked.price)
            params["timeInForce"] = tracked.time_in_force
        if self.category == "linear":
            params["positionIdx"] = 0
            if tracked.reduce_only:
                params["reduceOnly"] = True
        elif tracked.order_type is OrderType.MARKET:
            params["marketUnit"] = "baseCoin"  # spot market buys default to quote units
        return params

    async def _place(self, tracked: TrackedOrder) -> None:
        tracked.in_flight = True
        self.mirror.set_status(tracked, S.SUBMITTED)
        self.stats.orders_sent += 1
        try:
            result = await self.rest.place_order(self._order_params(tracked))
            self.mirror.note_venue_id(tracked, str(result.get("orderId") or ""))
            tracked.last_heard = self._now()
        except errors.DuplicateOrder:
            await self._read_back(tracked, resend=False)
        except errors.NetworkError as error:
            log.warning(
                "bybit: order outcome unknown, reading it back",
                order=tracked.client_order_id,
                error=str(error),
            )
            await self._read_back(tracked, resend=True)
        except (errors.OrderRejected, errors.OrderNotFound) as error:
            reason = error.reason if isinstance(error, errors.OrderRejected) else str(error)
            self.mirror.set_status(tracked, S.REJECTED, reason)
        except errors.CredentialsError as error:
            self.mirror.set_status(tracked, S.REJECTED, str(error))
            self._fatal(error)
        except (errors.RateLimited, errors.ClockSkew) as error:
            # Outlived the retries: Bybit refused it (reading back finds an earlier attempt).
            await self._read_back(tracked, resend=False, refused=str(error))
        except errors.Transient:
            # 5xx, 10000: the outcome is unknown. Reading back settles it, and if Bybit has
            # nothing yet the in-flight deadline applies (see reconcile.py).
            await self._read_back(tracked, resend=False)
        except errors.BybitError as error:
            self.mirror.set_status(tracked, S.REJECTED, str(error))
        finally:
            tracked.in_flight = False
        if tracked.cancel_requested and not tracked.status.is_terminal:
            await self._cancel(tracked)

    async def _read_back(self, tracked: TrackedOrder, *, resend: bool, refused: str = "") -> None:
        """Settle an order whose create answer is missing or ambiguous from the venue's view."""
        try:
            venue = await self.rest.find_order(self.category, link_id=tracked.client_order_id)
        except errors.BybitError as error:
            log.warning(
                "bybit: read-back failed; the order poll will retry",
                order=tracked.client_order_id,
                error=str(error),
            )
            return
        if venue is not None:
            await self.reconciler.settle(tracked, venue, why="read-back")
            return
        if resend:
            try:
                result = await self.rest.place_order(self._order_params(tracked))
                self.mirror.note_venue_id(tracked, str(result.get("orderId") or ""))
                return
            except errors.DuplicateOrder:
                await self._read_back(tracked, resend=False)
                return
            except errors.OrderRejected as error:
                self.mirror.set_status(tracked, S.REJECTED, error.reason)
                return
            except errors.BybitError as error:
                log.warning(
                    "bybit: resend failed; the order poll will settle it",
                    order=tracked.client_order_id,
                    error=str(error),
                )
                return
        if refused:
            self.mirror.set_status(tracked, S.REJECTED, refused)
        else:
            await self.reconciler.settle(tracked, None, why="after sending")

    async def _cancel(self, tracked: TrackedOrder) -> None:
        try:
            await self.rest.cancel_order(
                {
                    "category": self.category,
                    "symbol": tracked.symbol,
                    "orderLinkId": tracked.client_order_id,
                }
            )
        except errors.OrderNotFound:
            await self.reconciler.refresh(tracked, why="cancel of a closed order")
        except errors.CredentialsError as error:
            self._fatal(error)
        except errors.BybitError as error:
            log.warning(
                "bybit: cancel failed; the order poll will settle it",
                order=tracked.client_order_id,
                error=str(error),
            )

    async def _amend(self, tracked: TrackedOrder, params: dict[str, Any]) -> None:
        try:
            await self.rest.amend_order(params)
        except errors.OrderNotFound:
            await self.reconciler.refresh(tracked, why="amend of a closed order")
        except errors.CredentialsError as error:
            self._fatal(error)
        except errors.BybitError as error:
            log.warning("bybit: amend refused", order=tracked.client_order_id, error=str(error))

    # -- the private stream's handler: what the venue says ---------------------------------------

    def on_venue_order(self, venue: VenueOrder) -> None:
        self.mirror.on_venue_order(venue)

    def on_execution(self, execution: Execution) -> None:
        self.mirror.on_execution(execution)

    def on_position(self, position: VenuePosition) -> None:
        self.mirror.on_position(position)

    def on_wallet(self, wallet: Wallet) -> None:
        self.mirror.on_wallet(wallet)

    async def on_private_connected(self, reconnected: bool) -> None:
        await self.reconciler.on_private_connected(reconnected)

    def links(self) -> tuple[LinkState, ...]:
        return (self.private.connection.link("bybit private websocket"), self.rest.link())

    # -- background work and plumbing --------------------------------------------------------------

    async def _clock_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.clock_sync_interval)
            try:
                await self.rest.sync_clock(force=True)
            except errors.BybitError as error:
                log.warning("bybit: clock sync failed", error=str(error))

    def _later(self, function: Callable[..., None], *args: Any) -> None:
        """Report from `submit` after it has returned: the engine is not re-entered."""
        loop = self._loop or asyncio.get_running_loop()
        loop.call_soon(function, *args)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, FatalError):
            self._fatal(error)
        elif error is not None:
            log.error(
                "bybit broker task failed", error=f"{type(error).__name__}: {error}", exc_info=error
            )

    def _private_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if isinstance(error, FatalError):
            self._fatal(error)
        elif error is not None:
            log.error("bybit private stream stopped", error=f"{type(error).__name__}: {error}")

    def _fatal(self, error: FatalError) -> None:
        if self.fatal_error is None:
            self.fatal_error = error
            log.error("bybit: fatal error, trading must stop", error=str(error))
            if self.on_fatal is not None:
                self.on_fatal(error)

    def _raise_if_fatal(self) -> None:
        if self.fatal_error is not None:
            raise self.fatal_error

    def _now(self) -> float:
        loop = self._loop or asyncio.get_running_loop()
        return loop.time()

    def _emit(self, event: object) -> None:
        if self._emit_fn is None:
            raise RuntimeError("BybitBroker.bind(emit) was not called before trading")
        self._emit_fn(event)
