"""Bringing the broker's mirror to Bybit's truth over REST: read-backs, missed fills, restarts.

Every path that asks the venue instead of waiting for the private stream comes through here: the
start-up `reconcile` (a restart from the store), the private stream's reconnects, the poll of
quiet orders (`order_poll_interval`), a cumulative quantity ahead of the executions seen (the
gap is fetched from /v5/execution/list after `fill_gap_grace`) and a create whose answer was
lost.

An order that Bybit does not know is not yet "never placed": its create may still be on the way
(a request sent just before a crash, a slow network). Bybit refuses a request whose timestamp is
more than `recv_window` behind its clock, and the request was signed no earlier than the order
was created, so once the venue's clock has passed `created + clock offset + recv_window` (plus a
second for the offset's own error and Bybit's allowance for clocks ahead) the create can no longer
take effect. Until then the order stays SUBMITTED (pending) and is read back by its orderLinkId at
that deadline; only then is it settled as never placed. Rejecting it earlier would leave a market
order `rejected` with fills to come and a limit order resting at Bybit untracked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from typing import Any

from adapters.bybit import errors
from adapters.bybit.fields import base_of, quote_of
from adapters.bybit.mirror import OrderMirror, TrackedOrder
from adapters.bybit.parse import Execution, VenueOrder, Wallet
from adapters.bybit.rest import BybitRest
from bot.config import BybitConfig
from bot.events import Fill, OrderUpdate
from bot.log import get_logger
from bot.orders import Order, OrderStatus
from bot.protocols import VenueExit, VenueState

log = get_logger(__name__)

S = OrderStatus
ZERO = Decimal(0)
DEADLINE_MARGIN_MS = 1000
Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class Reconciler:
    """The REST side of the broker: everything that settles the mirror by asking Bybit."""

    def __init__(
        self,
        mirror: OrderMirror,
        rest: BybitRest,
        config: BybitConfig,
        instruments: Mapping[str, Any],
        last_price: Mapping[str, Decimal],
        spawn: Spawn,
    ) -> None:
        self.mirror = mirror
        self.rest = rest
        self.config = config
        self.category = config.category
        self.instruments = instruments
        self._last_price = last_price
        self._spawn = spawn
        self._awaiting_deadline: set[str] = set()
        self._gap_tasks: dict[str, asyncio.Task[None]] = {}
        self._exits_recovered = False
        mirror.on_gap = self.watch_gap

    # -- the start-up reconciliation ---------------------------------------------------------------

    async def reconcile(self, known: Sequence[Order]) -> VenueState:
        """What Bybit says is true, for the engine to resolve its store toward.

        The returned `updates` and `fills` are what the engine missed for `known` orders
        (reported nowhere else): apply the updates in order, then the fills. An update that the
        fills imply (PartiallyFilled, Filled) is left out, so the fills drive those states. An
        order still inside its in-flight deadline stays open and is settled later through `emit`.

        `cash` follows `bot.portfolio`'s convention (equity = cash + sum of qty x mark): on spot
        it is the quote coin's balance; on linear it is the wallet balance minus each position's
        qty x entry price, since a perpetual's margin never leaves the wallet.
        """
        mirror = self.mirror
        for order in known:
            mirror.track(order)
        collected: list[object] = []
        emit, mirror.emit = mirror.emit, collected.append
        try:
            venue_open = await self.rest.open_orders(self.category)
            by_link = {v.link_id: v for v in venue_open if v.link_id}
            for order in known:
                tracked = mirror.orders[order.client_order_id]
                if tracked.status.is_terminal:
                    continue
                venue = by_link.get(tracked.client_order_id)
                if venue is None:
                    venue = await self.find(tracked)
                await self.settle(tracked, venue, why="reconcile")
            if not self._exits_recovered and self.category == "linear":
                await self.recover_exits()
            positions = await self.venue_positions()
            mirror.wallet = await self.rest.wallet()
        finally:
            mirror.emit = emit
            # A protective exit the stream reported meanwhile goes to the engine now, ahead of
            # its fills (which come back in the state): the exit's order must exist first.
            for event in collected:
                if isinstance(event, VenueExit) and emit is not None:
                    emit(event)
        updates = tuple(e for e in collected if isinstance(e, OrderUpdate))
        fills = tuple(e for e in collected if isinstance(e, Fill))
        cash = self.portfolio_cash(mirror.wallet, positions)
        log.info(
            "bybit reconciled",
            open_orders=len(venue_open),
            missed_fills=len(fills),
            updates=len(updates),
            in_flight=len(self._awaiting_deadline),
            positions={k: str(v[0]) for k, v in positions.items()},
            cash=str(cash),
        )
        mirror.needs_reconcile = False
        return VenueState(
            # a position's TP/SL orders are Bybit's own, kept by `ProtectionDesk`
            open_orders=tuple(v.to_order() for v in venue_open if not v.protective),
            positions=positions,
            cash=cash,
            fills=fills,
            updates=updates,
        )

    async def recover_exits(self) -> None:
        """At the first reconciliation (a start, a restart): the exits Bybit made from a
        position's protective levels while nobody listened (its last 7 days of executions, what
        /v5/execution/list returns without a start time), each announced with its execution ids
        so the engine records the ones it does not hold yet, then their fills."""
        try:
            executions = await self.rest.executions(self.category)
        except errors.BybitError as error:
            log.warning("bybit: protective exits not read back", error=str(error))
            return
        self._exits_recovered = True
        by_order: dict[str, list[Execution]] = {}
        for execution in executions:
            if execution.protective and execution.is_trade:
                by_order.setdefault(execution.order_id, []).append(execution)
        for order_id, found in by_order.items():
            if self.mirror.lookup("", order_id) is not None:
                continue
            ids, total = tuple(e.exec_id for e in found), sum((e.qty for e in found), ZERO)
            tracked = self.mirror.adopt_exit(found[0], ids, total)
            for execution in found:
                self.mirror.emit_fill(tracked, execution)

    # -- one order -----------------------------------------------------------------------------

    async def refresh(self, tracked: TrackedOrder, why: str) -> None:
        try:
            venue = await self.find(tracked)
        except errors.BybitError as error:
            log.warning(
                "bybit: order read-back failed",
                order=tracked.client_order_id,
                why=why,
                error=str(error),
            )
            return
        await self.settle(tracked, venue, why=why)

    async def find(self, tracked: TrackedOrder) -> VenueOrder | None:
        """The venue's view of one order: by lorabot's link id, or by the venue's own id for an
        order Bybit created itself (a protective exit has no link id)."""
        if tracked.venue_made or not tracked.client_order_id:
            return await self.rest.find_order(self.category, order_id=tracked.venue_order_id)
        return await self.rest.find_order(self.category, link_id=tracked.client_order_id)

    async def settle(self, tracked: TrackedOrder, venue: VenueOrder | None, why: str) -> None:
        """Bring one order to the venue's truth: missed fills, then its status."""
        mirror = self.mirror
        if venue is None:
            self._settle_unknown(tracked, why)
            return
        if tracked.given_up:
            mirror.revive(tracked, f"{venue.venue_status} in a REST read")
        mirror.note_venue_id(tracked, venue.order_id)
        if venue.cum_exec_qty > tracked.filled:
            await self.fetch_executions(tracked)
        if tracked.filled < venue.cum_exec_qty:
            mirror.stats.unresolved_gaps += 1
            log.error(
                "bybit: executions missing after a REST read",
                order=tracked.client_order_id,
                reported=str(venue.cum_exec_qty),
                executions=str(tracked.filled),
                why=why,
            )
            tracked.pending = None
            mirror.apply_status_despite_gap(tracked, venue)
            return
        tracked.pending = None
        mirror.apply_venue(tracked, venue)

    def _settle_unknown(self, tracked: TrackedOrder, why: str) -> None:
        """Bybit has no such order: never placed (after the deadline), or no longer open."""
        mirror = self.mirror
        tracked.last_heard = mirror.now()
        if tracked.status in (S.CREATED, S.SUBMITTED):
            wait_ms = self.in_flight_deadline_ms(tracked) - self.rest.clock.now_ms()
            if wait_ms > 0 and not tracked.venue_order_id:
                self._await_deadline(tracked, wait_ms, why)
                return
            tracked.given_up = True
            reason = f"not found at Bybit ({why}): never placed"
            mirror.set_status(tracked, S.REJECTED, reason, provisional=True)
        elif not tracked.status.is_terminal:
            mirror.set_status(tracked, S.CANCELLED, f"no longer known to Bybit ({why})")

    def in_flight_deadline_ms(self, tracked: TrackedOrder) -> int:
        """Venue time after which a create for this order can no longer take effect."""
        return (
            tracked.created_ms
            + self.rest.clock.offset_ms
            + self.config.recv_window
            + DEADLINE_MARGIN_MS
        )

    def _await_deadline(self, tracked: TrackedOrder, wait_ms: int, why: str) -> None:
        if tracked.client_order_id in self._awaiting_deadline:
            return
        self._awaiting_deadline.add(tracked.client_order_id)
        log.info(
            "bybit: order not at Bybit yet; its create may still be in flight",
            order=tracked.client_order_id,
            why=why,
            read_back_in_s=round(wait_ms / 1000, 3),
        )
        self._spawn(self._read_back_at_deadline(tracked, wait_ms))

    async def _read_back_at_deadline(self, tracked: TrackedOrder, wait_ms: int) -> None:
        try:
            await asyncio.sleep(wait_ms / 1000)
            while tracked.status in (S.CREATED, S.SUBMITTED) and not tracked.venue_order_id:
                await self.refresh(tracked, why="in-flight deadline")
                if tracked.status in (S.CREATED, S.SUBMITTED) and not tracked.venue_order_id:
                    # The read-back failed (network): the deadline has passed, so try again.
                    await asyncio.sleep(self.config.rest_backoff)
        finally:
            self._awaiting_deadline.discard(tracked.client_order_id)

    # -- missed executions ---------------------------------------------------------------------

    def watch_gap(self, tracked: TrackedOrder) -> None:
        task = self._gap_tasks.get(tracked.client_order_id)
        if task is None or task.done():
            self.mirror.stats.gaps_detected += 1
            self._gap_tasks[tracked.client_order_id] = self._spawn(self._close_gap(tracked))

    async def _close_gap(self, tracked: TrackedOrder) -> None:
        """Executions the order report promised but the stream has not delivered: fetch them."""
        try:
            await self._close_gap_after_grace(tracked)
        finally:
            self._gap_tasks.pop(tracked.client_order_id, None)

    async def _close_gap_after_grace(self, tracked: TrackedOrder) -> None:
        await asyncio.sleep(self.config.fill_gap_grace)
        if tracked.pending is None:
            return
        await self.fetch_executions(tracked)
        pending = tracked.pending
        if pending is not None:
            tracked.pending = None
            if tracked.filled < pending.cum_exec_qty:
                self.mirror.stats.unresolved_gaps += 1
                log.error(
                    "bybit: Bybit reports more filled than its executions show",
                    order=tracked.client_order_id,
                    reported=str(pending.cum_exec_qty),
                    executions=str(tracked.filled),
                )
                self.mirror.apply_status_despite_gap(tracked, pending)
            else:
                self.mirror.apply_status(tracked, pending)

    async def fetch_executions(self, tracked: TrackedOrder) -> None:
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
                self.mirror.stats.fills_recovered += 1
                self.mirror.emit_fill(tracked, execution)

    # -- background ------------------------------------------------------------------------------

    async def on_private_connected(self, reconnected: bool) -> None:
        if not reconnected:
            return
        self.mirror.stats.resyncs += 1
        open_orders = [t for t in self.mirror.orders.values() if not t.status.is_terminal]
        log.info("bybit private stream back: re-reading open orders", orders=len(open_orders))
        for tracked in open_orders:
            if not tracked.in_flight:
                await self.refresh(tracked, why="reconnect")

    async def poll_loop(self) -> None:
        """Orders that have been quiet too long are read back (a stream may lose messages)."""
        interval = self.config.order_poll_interval
        while True:
            await asyncio.sleep(interval / 2)
            now = self.mirror.now()
            for tracked in list(self.mirror.orders.values()):
                if tracked.status.is_terminal or tracked.in_flight:
                    continue
                if now - tracked.last_heard >= interval:
                    tracked.last_heard = now
                    await self.refresh(tracked, why="poll")

    # -- positions and cash ----------------------------------------------------------------------

    def portfolio_cash(
        self, wallet: Wallet, positions: Mapping[str, tuple[Decimal, Decimal]]
    ) -> Decimal:
        if self.category == "linear":
            locked = sum((qty * avg for qty, avg in positions.values()), ZERO)
            return wallet.balance(self.config.settle_coin) - locked
        quote = quote_of(next(iter(self.instruments), "BTCUSDT"))
        return wallet.balance(quote)

    async def venue_positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        positions: dict[str, tuple[Decimal, Decimal]] = {
            symbol: (ZERO, ZERO) for symbol in self.instruments
        }
        if self.category == "linear":
            read = await self.rest.positions(self.category)
            self.mirror.venue_positions.clear()  # the list holds open positions only
            for position in read:
                positions[position.symbol] = (position.qty, position.avg_price)
                self.mirror.venue_positions[position.symbol] = position
        else:
            wallet = await self.rest.wallet()
            for symbol in self.instruments:
                # Bybit keeps no entry price for spot holdings: value them at the last price.
                price = self._last_price.get(symbol, ZERO)
                positions[symbol] = (wallet.balance(base_of(symbol)), price)
        return positions
