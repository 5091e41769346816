"""`BybitBroker`: the live broker, where paper mode has the paper broker.

The engine owns the `Order` objects; this broker only reports what Bybit says, as `OrderUpdate`
and `Fill` events through `emit`, and it must never report something the engine's state machine
would refuse. Bybit's private messages can arrive late, twice, or in another order than they
happened (an execution before the order's New; a stale New after PartiallyFilled), so for every
order the broker keeps a mirror of the state the engine holds after applying what was emitted:

- a status is emitted only if it is a legal forward move from the mirrored state
  (`bot.orders.can_transition`); anything else is a stale or repeated message: logged, dropped;
- a fill is emitted once per execution id; before it, SUBMITTED or TRIGGERED is emitted when the
  mirror is still CREATED or UNTRIGGERED, so `Order.apply_fill` can always take it;
- no fill is lost: when Bybit reports a cumulative filled quantity (`cumExecQty`) ahead of the
  executions seen, the order's status is held back for `fill_gap_grace` and the missing
  executions are fetched from /v5/execution/list; the private stream's reconnects, a poll of
  quiet orders (`order_poll_interval`) and `reconcile` all go through the same path.

Orders are sent with `orderLinkId` = the client order id the engine stored first, so a request
whose answer was lost (timeout) is read back by that id and never placed twice; a create that
Bybit refuses with 110072 (duplicate link id) is read back too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.bybit import errors
from adapters.bybit.endpoints import Endpoints, endpoints
from adapters.bybit.parse import (
    VENUE_ORDER_TYPE,
    VENUE_SIDE,
    Execution,
    VenueOrder,
    VenuePosition,
    Wallet,
    base_of,
    quote_of,
)
from adapters.bybit.private import BybitPrivateStream
from adapters.bybit.rest import BybitRest
from bot.clock import Clock
from bot.config import Secrets, Settings
from bot.errors import FatalError
from bot.events import Bar, Fill, OrderType, OrderUpdate, Side, Ticker, Trade
from bot.log import get_logger
from bot.orders import TRANSITIONS, Order, OrderStatus, can_transition
from bot.protocols import Emit, VenueState
from bot.symbols import Instrument

log = get_logger(__name__)

S = OrderStatus
ZERO = Decimal(0)
MAX_LINK_ID = 36


@dataclass
class _Tracked:
    """The broker's mirror of one engine order, and what the venue last said about it."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    order_type: OrderType
    price: Decimal | None
    time_in_force: str
    reduce_only: bool
    status: OrderStatus = S.CREATED
    filled: Decimal = ZERO
    exec_ids: set[str] = field(default_factory=set)
    venue_order_id: str = ""
    venue_cum: Decimal = ZERO
    pending: VenueOrder | None = None
    gap_task: asyncio.Task[None] | None = None
    in_flight: bool = False
    cancel_requested: bool = False
    last_heard: float = 0.0

    @classmethod
    def from_order(cls, order: Order) -> _Tracked:
        return cls(
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty=order.qty,
            order_type=order.order_type,
            price=order.price,
            time_in_force=order.time_in_force.value,
            reduce_only=order.reduce_only,
            status=order.status,
            filled=order.filled_qty,
            exec_ids=set(order.exec_ids),
            venue_order_id=order.venue_order_id,
            venue_cum=order.filled_qty,
        )


@dataclass
class BrokerStats:
    orders_sent: int = 0
    rejected_locally: int = 0
    fills: int = 0
    duplicate_fills: int = 0
    stale_updates: int = 0
    gaps_detected: int = 0
    fills_recovered: int = 0
    unresolved_gaps: int = 0
    external_executions: int = 0
    resyncs: int = 0


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
        self.stats = BrokerStats()
        self.fatal_error: FatalError | None = None
        self.on_fatal: Callable[[FatalError], None] | None = None
        self.needs_reconcile = False
        self.venue_positions: dict[str, VenuePosition] = {}
        self.wallet: Wallet | None = None
        self._emit_fn: Emit | None = None
        self._collector: list[object] | None = None
        self._orders: dict[str, _Tracked] = {}
        self._by_venue_id: dict[str, str] = {}
        self._last_price: dict[str, Decimal] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._private_task: asyncio.Task[None] | None = None
        self._timers: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = False

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
        self.wallet = await self.rest.wallet()  # CredentialsError (fatal) on bad keys
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
            asyncio.create_task(self._poll_loop(), name="bybit-order-poll"),
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
        if order.client_order_id in self._orders:
            log.warning("bybit: order submitted twice, ignored", order=order.client_order_id)
            return
        tracked = _Tracked.from_order(order)
        self._orders[order.client_order_id] = tracked
        reason = self._local_check(order, tracked)
        if reason:
            self.stats.rejected_locally += 1
            log.warning(
                "bybit: order rejected before sending", order=order.client_order_id, reason=reason
            )
            self._later(self._set_status, tracked, S.REJECTED, reason)
            return
        self._spawn(self._place(tracked))

    def cancel(self, order: Order) -> None:
        tracked = self._orders.get(order.client_order_id)
        if tracked is None:
            tracked = _Tracked.from_order(order)
            self._orders[order.client_order_id] = tracked
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
        tracked = self._orders.get(order.client_order_id)
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
        """What Bybit says is true, for the engine to resolve its store toward.

        The returned `updates` and `fills` are what the engine missed for `known` orders
        (reported nowhere else): apply the updates in order, then the fills. An update that the
        fills imply (PartiallyFilled, Filled) is left out, so the fills drive those states.

        `cash` follows `bot.portfolio`'s convention (equity = cash + sum of qty x mark): on spot
        it is the quote coin's balance; on linear it is the wallet balance minus each position's
        qty x entry price, since a perpetual's margin never leaves the wallet.
        """
        self._raise_if_fatal()
        for order in known:
            if order.client_order_id not in self._orders:
                self._orders[order.client_order_id] = _Tracked.from_order(order)
            if order.venue_order_id:
                self._by_venue_id[order.venue_order_id] = order.client_order_id
        collected: list[object] = []
        self._collector = collected
        try:
            venue_open = await self.rest.open_orders(self.category)
            by_link = {v.link_id: v for v in venue_open if v.link_id}
            for order in known:
                tracked = self._orders[order.client_order_id]
                if tracked.status.is_terminal:
                    continue
                venue = by_link.get(tracked.client_order_id)
                if venue is None:
                    venue = await self.rest.find_order(
                        self.category, link_id=tracked.client_order_id
                    )
                await self._settle(tracked, venue, why="reconcile")
            positions = await self._venue_positions()
            self.wallet = await self.rest.wallet()
        finally:
            self._collector = None
        updates = tuple(e for e in collected if isinstance(e, OrderUpdate))
        fills = tuple(e for e in collected if isinstance(e, Fill))
        cash = self._portfolio_cash(self.wallet, positions)
        log.info(
            "bybit reconciled",
            open_orders=len(venue_open),
            missed_fills=len(fills),
            updates=len(updates),
            positions={k: str(v[0]) for k, v in positions.items()},
            cash=str(cash),
        )
        self.needs_reconcile = False
        return VenueState(
            open_orders=tuple(v.to_order() for v in venue_open),
            positions=positions,
            cash=cash,
            fills=fills,
            updates=updates,
        )

    # -- sending -----------------------------------------------------------------------------------

    def _local_check(self, order: Order, tracked: _Tracked) -> str:
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
        if self.category == "spot" and order.reduce_only:
            return "reduce-only orders do not exist on spot"
        return instrument.check(order.qty, reference) or ""

    def _order_params(self, tracked: _Tracked) -> dict[str, Any]:
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

    async def _place(self, tracked: _Tracked) -> None:
        tracked.in_flight = True
        self._set_status(tracked, S.SUBMITTED)
        self.stats.orders_sent += 1
        try:
            result = await self.rest.place_order(self._order_params(tracked))
            self._note_venue_id(tracked, str(result.get("orderId") or ""))
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
            self._set_status(tracked, S.REJECTED, reason)
        except errors.CredentialsError as error:
            self._set_status(tracked, S.REJECTED, str(error))
            self._fatal(error)
        except errors.Transient as error:
            # Rate limit or clock error that outlived the retries: Bybit refused it, or (5xx,
            # 10000) the outcome is unknown. Reading back settles both.
            await self._read_back(tracked, resend=False, refused=str(error))
        except errors.BybitError as error:
            self._set_status(tracked, S.REJECTED, str(error))
        finally:
            tracked.in_flight = False
        if tracked.cancel_requested and not tracked.status.is_terminal:
            await self._cancel(tracked)

    async def _read_back(self, tracked: _Tracked, *, resend: bool, refused: str = "") -> None:
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
            await self._settle(tracked, venue, why="read-back")
            return
        if resend:
            try:
                result = await self.rest.place_order(self._order_params(tracked))
                self._note_venue_id(tracked, str(result.get("orderId") or ""))
                return
            except errors.DuplicateOrder:
                await self._read_back(tracked, resend=False)
                return
            except errors.OrderRejected as error:
                self._set_status(tracked, S.REJECTED, error.reason)
                return
            except errors.BybitError as error:
                log.warning(
                    "bybit: resend failed; the order poll will settle it",
                    order=tracked.client_order_id,
                    error=str(error),
                )
                return
        self._set_status(tracked, S.REJECTED, refused or "not found at Bybit after sending")

    async def _cancel(self, tracked: _Tracked) -> None:
        try:
            await self.rest.cancel_order(
                {
                    "category": self.category,
                    "symbol": tracked.symbol,
                    "orderLinkId": tracked.client_order_id,
                }
            )
        except errors.OrderNotFound:
            await self._refresh(tracked, why="cancel of a closed order")
        except errors.CredentialsError as error:
            self._fatal(error)
        except errors.BybitError as error:
            log.warning(
                "bybit: cancel failed; the order poll will settle it",
                order=tracked.client_order_id,
                error=str(error),
            )

    async def _amend(self, tracked: _Tracked, params: dict[str, Any]) -> None:
        try:
            await self.rest.amend_order(params)
        except errors.OrderNotFound:
            await self._refresh(tracked, why="amend of a closed order")
        except errors.CredentialsError as error:
            self._fatal(error)
        except errors.BybitError as error:
            log.warning("bybit: amend refused", order=tracked.client_order_id, error=str(error))

    # -- what the venue says -----------------------------------------------------------------------

    def on_venue_order(self, venue: VenueOrder) -> None:
        tracked = self._lookup(venue.link_id, venue.order_id)
        if tracked is None:
            log.debug(
                "bybit: update for an order lorabot does not track",
                order=venue.client_order_id,
                status=venue.venue_status,
            )
            return
        self._apply_venue(tracked, venue)

    def on_execution(self, execution: Execution) -> None:
        if not execution.is_trade:
            log.info(
                "bybit: non-trade execution (cash only)",
                exec_type=execution.exec_type,
                symbol=execution.symbol,
                fee=str(execution.fee),
            )
            return
        tracked = self._lookup(execution.link_id, execution.order_id)
        if tracked is None:
            self.stats.external_executions += 1
            self.needs_reconcile = True
            log.warning(
                "bybit: execution of an order lorabot did not place; the position "
                "changes outside lorabot until the next reconciliation",
                exec_type=execution.exec_type,
                symbol=execution.symbol,
                side=execution.side.value,
                qty=str(execution.qty),
            )
            return
        self._emit_fill(tracked, execution)

    def on_position(self, position: VenuePosition) -> None:
        self.venue_positions[position.symbol] = position

    def on_wallet(self, wallet: Wallet) -> None:
        self.wallet = wallet

    async def on_private_connected(self, reconnected: bool) -> None:
        if reconnected:
            self.stats.resyncs += 1
            open_orders = [t for t in self._orders.values() if not t.status.is_terminal]
            log.info("bybit private stream back: re-reading open orders", orders=len(open_orders))
            for tracked in open_orders:
                if not tracked.in_flight:
                    await self._refresh(tracked, why="reconnect")

    # -- the mirror --------------------------------------------------------------------------------

    def _lookup(self, link_id: str, order_id: str) -> _Tracked | None:
        key = link_id if link_id in self._orders else self._by_venue_id.get(order_id, "")
        return self._orders.get(key)

    def _note_venue_id(self, tracked: _Tracked, order_id: str) -> None:
        if not order_id or tracked.venue_order_id == order_id:
            return
        tracked.venue_order_id = order_id
        self._by_venue_id[order_id] = tracked.client_order_id
        if tracked.status is S.SUBMITTED:
            self._emit(
                OrderUpdate(
                    ts=self._ts(),
                    client_order_id=tracked.client_order_id,
                    status=S.SUBMITTED.value,
                    venue_order_id=order_id,
                )
            )

    def _apply_venue(self, tracked: _Tracked, venue: VenueOrder) -> None:
        """An order report (stream, read-back or poll): fills first, then its status."""
        tracked.last_heard = self._now()
        self._note_venue_id(tracked, venue.order_id)
        if venue.cum_exec_qty > tracked.venue_cum:
            tracked.venue_cum = venue.cum_exec_qty
        if tracked.filled < venue.cum_exec_qty:
            if tracked.pending is None or venue.cum_exec_qty >= tracked.pending.cum_exec_qty:
                tracked.pending = venue
            self._watch_gap(tracked)
            return
        self._apply_status(tracked, venue)

    def _apply_status(self, tracked: _Tracked, venue: VenueOrder) -> None:
        status = venue.status
        changed = (venue.qty != tracked.qty) or (
            venue.price is not None and tracked.price is not None and venue.price != tracked.price
        )
        # Fills drive PartiallyFilled and Filled: a report of them ahead of the mirror is one the
        # executions already covered (the mirror follows the fills) or a stale one.
        if (
            status in (S.PARTIALLY_FILLED, S.FILLED)
            and status is not tracked.status
            and (not can_transition(tracked.status, status) or tracked.filled < venue.cum_exec_qty)
        ):
            self._stale(tracked, venue)
            return
        if status is tracked.status:
            if changed and status in TRANSITIONS[status]:
                self._emit_status(tracked, status, venue)
            return
        if not can_transition(tracked.status, status):
            self._stale(tracked, venue)
            return
        self._emit_status(tracked, status, venue)

    def _stale(self, tracked: _Tracked, venue: VenueOrder) -> None:
        self.stats.stale_updates += 1
        log.info(
            "bybit: stale or reordered order update dropped",
            order=tracked.client_order_id,
            held=tracked.status.value,
            reported=venue.venue_status,
        )

    def _emit_status(self, tracked: _Tracked, status: OrderStatus, venue: VenueOrder) -> None:
        tracked.status = status
        tracked.qty = venue.qty
        if venue.price is not None:
            tracked.price = venue.price
        self._emit(
            OrderUpdate(
                ts=venue.updated,
                client_order_id=tracked.client_order_id,
                status=status.value,
                venue_order_id=venue.order_id,
                filled_qty=tracked.filled,
                avg_price=venue.avg_price,
                reason=venue.reason,
                price=venue.price,
                qty=venue.qty,
            )
        )

    def _set_status(self, tracked: _Tracked, status: OrderStatus, reason: str = "") -> None:
        """A state lorabot decided itself (sent, refused before sending, refused by REST)."""
        if status is tracked.status or not can_transition(tracked.status, status):
            return
        tracked.status = status
        self._emit(
            OrderUpdate(
                ts=self._ts(),
                client_order_id=tracked.client_order_id,
                status=status.value,
                venue_order_id=tracked.venue_order_id,
                reason=reason,
            )
        )

    def _emit_fill(self, tracked: _Tracked, execution: Execution) -> None:
        if execution.exec_id in tracked.exec_ids:
            self.stats.duplicate_fills += 1
            log.debug("bybit: repeated execution dropped", exec_id=execution.exec_id)
            return
        tracked.last_heard = self._now()
        self._note_venue_id(tracked, execution.order_id)
        if tracked.status is S.CREATED:
            self._set_status(tracked, S.SUBMITTED)
        if tracked.status is S.UNTRIGGERED:
            self._set_status(tracked, S.TRIGGERED)
        new_filled = tracked.filled + execution.qty
        if new_filled > tracked.qty:
            log.error(
                "bybit: executions exceed the order quantity lorabot knows",
                order=tracked.client_order_id,
                filled=str(new_filled),
                qty=str(tracked.qty),
            )
        tracked.exec_ids.add(execution.exec_id)
        tracked.filled = new_filled
        if not tracked.status.is_terminal:
            tracked.status = S.FILLED if new_filled >= tracked.qty else S.PARTIALLY_FILLED
        self.stats.fills += 1
        self._emit(execution.to_fill(tracked.client_order_id))
        pending = tracked.pending
        if pending is not None and tracked.filled >= pending.cum_exec_qty:
            tracked.pending = None
            self._apply_status(tracked, pending)

    def _watch_gap(self, tracked: _Tracked) -> None:
        if tracked.gap_task is None or tracked.gap_task.done():
            self.stats.gaps_detected += 1
            tracked.gap_task = self._spawn(self._close_gap(tracked))

    async def _close_gap(self, tracked: _Tracked) -> None:
        """Executions the order report promised but the stream has not delivered: fetch them."""
        await asyncio.sleep(self.config.fill_gap_grace)
        if tracked.pending is None:
            return
        await self._fetch_executions(tracked)
        pending = tracked.pending
        if pending is not None:
            tracked.pending = None
            if tracked.filled < pending.cum_exec_qty:
                self.stats.unresolved_gaps += 1
                log.error(
                    "bybit: Bybit reports more filled than its executions show",
                    order=tracked.client_order_id,
                    reported=str(pending.cum_exec_qty),
                    executions=str(tracked.filled),
                )
                self._apply_status_despite_gap(tracked, pending)
            else:
                self._apply_status(tracked, pending)

    def _apply_status_despite_gap(self, tracked: _Tracked, venue: VenueOrder) -> None:
        if venue.status.is_terminal and can_transition(tracked.status, venue.status):
            self._emit_status(tracked, venue.status, venue)

    async def _fetch_executions(self, tracked: _Tracked) -> None:
        try:
            executions = await self.rest.executions(
                self.category,
                order_id=tracked.venue_order_id or None,
                link_id=tracked.client_order_id,
            )
        except errors.BybitError as error:
            log.warning(
                "bybit: executions could not be fetched",
                order=tracked.client_order_id,
                error=str(error),
            )
            return
        for execution in executions:
            if execution.exec_id not in tracked.exec_ids and execution.is_trade:
                self.stats.fills_recovered += 1
                self._emit_fill(tracked, execution)

    async def _refresh(self, tracked: _Tracked, why: str) -> None:
        try:
            venue = await self.rest.find_order(
                self.category,
                link_id=tracked.client_order_id,
                order_id=None if tracked.client_order_id else tracked.venue_order_id,
            )
        except errors.BybitError as error:
            log.warning(
                "bybit: order read-back failed",
                order=tracked.client_order_id,
                why=why,
                error=str(error),
            )
            return
        await self._settle(tracked, venue, why=why)

    async def _settle(self, tracked: _Tracked, venue: VenueOrder | None, why: str) -> None:
        """Bring one order to the venue's truth: missed fills, then its status."""
        if venue is None:
            tracked.last_heard = self._now()
            if tracked.status in (S.CREATED, S.SUBMITTED):
                self._set_status(tracked, S.REJECTED, f"not found at Bybit ({why}): never placed")
            elif not tracked.status.is_terminal:
                self._set_status(tracked, S.CANCELLED, f"no longer known to Bybit ({why})")
            return
        self._note_venue_id(tracked, venue.order_id)
        if venue.cum_exec_qty > tracked.filled:
            await self._fetch_executions(tracked)
        if tracked.filled < venue.cum_exec_qty:
            self.stats.unresolved_gaps += 1
            log.error(
                "bybit: executions missing after a REST read",
                order=tracked.client_order_id,
                reported=str(venue.cum_exec_qty),
                executions=str(tracked.filled),
                why=why,
            )
            tracked.pending = None
            self._apply_status_despite_gap(tracked, venue)
            return
        tracked.pending = None
        self._apply_venue(tracked, venue)

    # -- background work ---------------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        """Orders that have been quiet too long are read back (a stream may lose messages)."""
        interval = self.config.order_poll_interval
        while True:
            await asyncio.sleep(interval / 2)
            now = self._now()
            for tracked in list(self._orders.values()):
                if tracked.status.is_terminal or tracked.in_flight:
                    continue
                if now - tracked.last_heard >= interval:
                    tracked.last_heard = now
                    await self._refresh(tracked, why="poll")

    async def _clock_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.clock_sync_interval)
            try:
                await self.rest.sync_clock(force=True)
            except errors.BybitError as error:
                log.warning("bybit: clock sync failed", error=str(error))

    def _portfolio_cash(
        self, wallet: Wallet, positions: Mapping[str, tuple[Decimal, Decimal]]
    ) -> Decimal:
        if self.category == "linear":
            locked = sum((qty * avg for qty, avg in positions.values()), ZERO)
            return wallet.balance(self.config.settle_coin) - locked
        quote = quote_of(next(iter(self.instruments), "BTCUSDT"))
        return wallet.balance(quote)

    async def _venue_positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        positions: dict[str, tuple[Decimal, Decimal]] = {
            symbol: (ZERO, ZERO) for symbol in self.instruments
        }
        if self.category == "linear":
            for position in await self.rest.positions(self.category):
                positions[position.symbol] = (position.qty, position.avg_price)
                self.venue_positions[position.symbol] = position
        else:
            wallet = await self.rest.wallet()
            for symbol in self.instruments:
                # Bybit keeps no entry price for spot holdings: value them at the last price.
                price = self._last_price.get(symbol, ZERO)
                positions[symbol] = (wallet.balance(base_of(symbol)), price)
        return positions

    # -- plumbing ----------------------------------------------------------------------------------

    def _emit(self, event: object) -> None:
        if self._collector is not None:
            self._collector.append(event)
            return
        if self._emit_fn is None:
            raise RuntimeError("BybitBroker.bind(emit) was not called before trading")
        self._emit_fn(event)

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

    def _ts(self) -> datetime:
        return self.clock.now()

    def tracked_status(self, client_order_id: str) -> OrderStatus | None:
        """The state the engine holds for an order, as far as this broker reported it."""
        tracked = self._orders.get(client_order_id)
        return tracked.status if tracked else None
