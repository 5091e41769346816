"""`OrderMirror` fed Bybit's private-stream fixture messages, with no socket and no REST: what it
emits is applied through the engine's real state machine (the strict `Ledger`)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from adapters.bybit.mirror import OrderMirror, TrackedOrder
from adapters.bybit.parse import (
    VenueOrder,
    execution_from_venue,
    order_from_venue,
    position_from_venue,
    wallet_from_venue,
)
from bot.clock import ReplayClock
from bot.events import Fill, OrderUpdate, Side
from bot.orders import OrderStatus

from .harness import Ledger, make_order

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bybit"
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def items(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text())["data"]
    return data


class Mirrored:
    """A mirror wired to a strict ledger, with the gaps it asks to be fetched recorded."""

    def __init__(self) -> None:
        self.ledger = Ledger()
        self.mirror = OrderMirror(ReplayClock(T0), lambda: 0.0)
        self.mirror.emit = self.ledger.emit
        self.gaps: list[str] = []
        self.mirror.on_gap = lambda t: self.gaps.append(t.client_order_id)

    def track(self, cid: str, qty: str = "0.100", price: str | None = "42000.0") -> TrackedOrder:
        order = self.ledger.add(make_order(cid, Side.BUY, qty, price=price))
        return self.mirror.track(order)

    def status(self, cid: str) -> OrderStatus:
        return self.ledger.orders[cid].status


@pytest.fixture
def m() -> Mirrored:
    return Mirrored()


def test_the_order_lifecycle_fixture_reaches_filled_through_the_fills(m: Mirrored) -> None:
    m.track("lb-0001")
    created, new, partial, filled = (order_from_venue(i) for i in items("ws_order_lifecycle.json"))
    trade = execution_from_venue(items("ws_execution.json")[0])

    m.mirror.on_venue_order(created)
    assert m.status("lb-0001") is OrderStatus.SUBMITTED
    m.mirror.on_venue_order(new)
    assert m.status("lb-0001") is OrderStatus.ACCEPTED
    assert m.ledger.orders["lb-0001"].venue_order_id == "1321003749386327552"

    # Bybit's PartiallyFilled (cumExecQty 0.040) before its execution: held, the gap reported.
    m.mirror.on_venue_order(partial)
    assert m.status("lb-0001") is OrderStatus.ACCEPTED and m.gaps == ["lb-0001"]
    m.mirror.on_execution(trade)
    assert m.status("lb-0001") is OrderStatus.PARTIALLY_FILLED
    assert m.ledger.position() == D("0.040")
    m.mirror.on_execution(trade)  # repeated: dropped
    assert m.mirror.stats.duplicate_fills == 1 and len(m.ledger.fills) == 1

    # Filled (cumExecQty 0.100) with only 0.040 executed: held until the rest arrives.
    m.mirror.on_venue_order(filled)
    assert m.status("lb-0001") is OrderStatus.PARTIALLY_FILLED
    rest = execution_from_venue(
        {**items("ws_execution.json")[0], "execId": "rest-of-it", "execQty": "0.060"}
    )
    m.mirror.on_execution(rest)
    assert m.status("lb-0001") is OrderStatus.FILLED
    assert m.ledger.position() == D("0.100") and m.ledger.errors == []

    # A stale New after all that changes nothing.
    m.mirror.on_venue_order(new)
    assert m.status("lb-0001") is OrderStatus.FILLED and m.mirror.stats.stale_updates == 1


def test_an_execution_before_any_order_report_submits_then_fills(m: Mirrored) -> None:
    m.track("lb-0001")
    m.mirror.on_execution(execution_from_venue(items("ws_execution.json")[0]))
    kinds = [type(e).__name__ for e in m.ledger.events]
    assert kinds == ["OrderUpdate", "Fill"]
    update = m.ledger.events[0]
    assert isinstance(update, OrderUpdate) and update.ts == T0  # stamped by the injected clock
    assert m.status("lb-0001") is OrderStatus.PARTIALLY_FILLED


def test_endings_map_to_the_engines_terminal_states(m: Mirrored) -> None:
    for cid in ("lb-0002", "lb-0003", "lb-0005"):
        m.track(cid)
        m.mirror.set_status(m.mirror.orders[cid], OrderStatus.SUBMITTED)
    endings = {o.link_id: o for o in map(order_from_venue, items("ws_order_endings.json"))}
    for cid in ("lb-0002", "lb-0003", "lb-0005"):
        m.mirror.on_venue_order(endings[cid])
    assert m.status("lb-0002") is OrderStatus.CANCELLED
    assert m.status("lb-0003") is OrderStatus.REJECTED
    assert m.status("lb-0005") is OrderStatus.CANCELLED
    assert m.ledger.errors == []


def test_funding_and_foreign_executions_move_no_order(m: Mirrored) -> None:
    m.track("lb-0001")
    funding, foreign = (execution_from_venue(i) for i in items("ws_execution.json")[1:])
    m.mirror.on_execution(funding)
    assert m.ledger.events == [] and not m.mirror.needs_reconcile
    m.mirror.on_execution(foreign)  # lb-0007: an order lorabot did not place
    assert m.ledger.events == [] and m.mirror.needs_reconcile
    assert m.mirror.stats.external_executions == 1


def test_a_report_for_an_order_given_up_revives_it(m: Mirrored) -> None:
    """Issue 11.2: an order settled as never placed that the venue reports after all follows the
    venue again (its status, then its fills), instead of resting there untracked."""
    tracked = m.track("lb-0001")
    m.mirror.set_status(tracked, OrderStatus.SUBMITTED)
    m.mirror.set_status(tracked, OrderStatus.REJECTED, "never placed", provisional=True)
    tracked.given_up = True
    assert m.status("lb-0001") is OrderStatus.REJECTED
    new: VenueOrder = order_from_venue(items("ws_order_lifecycle.json")[1])
    m.mirror.on_venue_order(new)
    assert m.status("lb-0001") is OrderStatus.ACCEPTED
    m.mirror.on_execution(execution_from_venue(items("ws_execution.json")[0]))
    assert any(isinstance(e, Fill) for e in m.ledger.events)
    assert m.status("lb-0001") in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
    assert m.mirror.stats.late_reports == 1 and not tracked.given_up
    assert m.ledger.errors == []


def test_a_fill_revives_an_order_settled_as_never_placed_without_a_status_report(
    m: Mirrored,
) -> None:
    tracked = m.track("lb-0001")
    m.mirror.set_status(tracked, OrderStatus.SUBMITTED)
    m.mirror.set_status(tracked, OrderStatus.REJECTED, "never placed", provisional=True)
    tracked.given_up = True
    m.mirror.on_execution(execution_from_venue(items("ws_execution.json")[0]))
    assert m.status("lb-0001") in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
    assert m.ledger.errors == []


def test_a_rejection_by_the_venue_is_final() -> None:
    """Only lorabot's own provisional conclusion can be overruled, never the venue's answer."""
    from bot.orders import IllegalTransition

    order = make_order("lb-0002", Side.BUY, "0.100", price="42000.0")
    order.transition(OrderStatus.SUBMITTED)
    order.transition(OrderStatus.REJECTED, reason="110007 insufficient balance")
    with pytest.raises(IllegalTransition, match="rejected -> accepted"):
        order.transition(OrderStatus.ACCEPTED)


def test_position_and_wallet_messages_are_kept(m: Mirrored) -> None:
    position = position_from_venue(items("ws_position.json")[0])
    m.mirror.on_position(position)
    assert m.mirror.venue_positions[position.symbol] is position
    wallet = wallet_from_venue(items("ws_wallet.json")[0])
    m.mirror.on_wallet(wallet)
    assert m.mirror.wallet is wallet


def _protective_execution(exec_id: str, qty: str, leaves: str) -> dict[str, Any]:
    """An execution of the order Bybit created from a position's stop-loss (as its private
    stream sends it: no orderLinkId, stopOrderType and createType set)."""
    return {
        "category": "linear",
        "symbol": "BTCUSDT",
        "execId": exec_id,
        "execPrice": "41000.0",
        "execQty": qty,
        "execType": "Trade",
        "execFee": "0.1",
        "isMaker": False,
        "orderId": "venue-sl-1",
        "orderLinkId": "",
        "side": "Sell",
        "leavesQty": leaves,
        "stopOrderType": "StopLoss",
        "createType": "CreateByStopLoss",
        "execTime": "1704067200000",
    }


def test_a_protective_execution_is_announced_once_then_filled(m: Mirrored) -> None:
    first = execution_from_venue(_protective_execution("e1", "0.060", "0.040"))
    second = execution_from_venue(_protective_execution("e2", "0.040", "0"))
    assert first.protective == "stop_loss"
    m.mirror.on_execution(first)
    m.mirror.on_execution(first)  # repeated
    m.mirror.on_execution(second)
    (exit_,) = m.ledger.exits
    assert exit_.reason == "stop_loss" and exit_.qty == D("0.100") and exit_.side is Side.SELL
    assert exit_.client_order_id == "bybit:venue-sl-1" and exit_.venue_order_id == "venue-sl-1"
    assert m.status("bybit:venue-sl-1") is OrderStatus.FILLED
    assert [f.exec_id for f in m.ledger.fills] == ["e1", "e2"]
    assert not m.mirror.needs_reconcile and m.mirror.stats.external_executions == 0


def test_an_unknown_execution_that_no_level_caused_stays_external(m: Mirrored) -> None:
    item = {**_protective_execution("e3", "0.010", "0"), "stopOrderType": "UNKNOWN"}
    item["createType"] = "CreateByUser"
    m.mirror.on_execution(execution_from_venue(item))
    assert m.ledger.exits == [] and m.mirror.needs_reconcile


def test_a_positions_levels_and_leverage_are_read_from_the_position_list() -> None:
    position = position_from_venue(
        {
            "symbol": "BTCUSDT",
            "side": "Buy",
            "size": "0.01",
            "avgPrice": "42000",
            "leverage": "5",
            "stopLoss": "41000.5",
            "takeProfit": "0",
            "trailingStop": "",
        },
        "linear",
    )
    assert position.leverage == 5
    assert position.protection.stop_loss == D("41000.5")
    assert position.protection.take_profit is None and position.protection.trailing_stop is None
