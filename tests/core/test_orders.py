from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bot.events import Fill, Side
from bot.orders import TRANSITIONS, IllegalTransition, Order, OrderStatus, Overfill

T = datetime(2024, 1, 1, tzinfo=UTC)
S = OrderStatus


def order(qty: str = "1") -> Order:
    return Order("c1", "BTCUSDT", Side.BUY, Decimal(qty), T)


def fill(exec_id: str, qty: str, price: str = "100") -> Fill:
    return Fill(T, "c1", exec_id, "BTCUSDT", Side.BUY, Decimal(qty), Decimal(price), Decimal("0"))


LEGAL = [
    (S.CREATED, S.SUBMITTED),
    (S.SUBMITTED, S.ACCEPTED),
    (S.ACCEPTED, S.PARTIALLY_FILLED),
    (S.PARTIALLY_FILLED, S.FILLED),
    (S.PARTIALLY_FILLED, S.CANCELLED),
    (S.PARTIALLY_FILLED, S.REJECTED),
    (S.SUBMITTED, S.UNTRIGGERED),
    (S.UNTRIGGERED, S.TRIGGERED),
    (S.TRIGGERED, S.FILLED),
    (S.ACCEPTED, S.EXPIRED),
    (S.SUBMITTED, S.REJECTED),
]
ILLEGAL = [
    (S.FILLED, S.CANCELLED),
    (S.CANCELLED, S.ACCEPTED),
    (S.PARTIALLY_FILLED, S.ACCEPTED),
    (S.ACCEPTED, S.SUBMITTED),
    (S.CREATED, S.FILLED),
    (S.REJECTED, S.SUBMITTED),
    (S.UNTRIGGERED, S.FILLED),
    (S.EXPIRED, S.FILLED),
]


def walk_to(target: OrderStatus) -> Order:
    paths = {
        S.CREATED: [],
        S.SUBMITTED: [S.SUBMITTED],
        S.ACCEPTED: [S.SUBMITTED, S.ACCEPTED],
        S.UNTRIGGERED: [S.SUBMITTED, S.UNTRIGGERED],
        S.TRIGGERED: [S.SUBMITTED, S.UNTRIGGERED, S.TRIGGERED],
        S.PARTIALLY_FILLED: [S.SUBMITTED, S.ACCEPTED, S.PARTIALLY_FILLED],
        S.FILLED: [S.SUBMITTED, S.ACCEPTED, S.FILLED],
        S.CANCELLED: [S.SUBMITTED, S.CANCELLED],
        S.REJECTED: [S.SUBMITTED, S.REJECTED],
        S.EXPIRED: [S.SUBMITTED, S.ACCEPTED, S.EXPIRED],
    }
    o = order()
    for step in paths[target]:
        o.transition(step)
    return o


@pytest.mark.parametrize(("start", "end"), LEGAL)
def test_legal_transitions(start: OrderStatus, end: OrderStatus) -> None:
    o = walk_to(start)
    assert o.transition(end) is True
    assert o.status is end


@pytest.mark.parametrize(("start", "end"), ILLEGAL)
def test_illegal_transition_names_both_states(start: OrderStatus, end: OrderStatus) -> None:
    o = walk_to(start)
    with pytest.raises(IllegalTransition) as error:
        o.transition(end)
    assert start.value in str(error.value) and end.value in str(error.value)
    assert o.status is start


def test_terminal_states_go_nowhere() -> None:
    for status in S:
        assert (not TRANSITIONS[status]) == status.is_terminal


def test_repeated_state_is_a_no_op() -> None:
    o = walk_to(S.ACCEPTED)
    assert o.transition(S.ACCEPTED) is False


def test_fills_apply_once_per_exec_id_and_drive_status() -> None:
    o = walk_to(S.ACCEPTED)
    o.qty = Decimal("1.0")
    assert o.apply_fill(fill("e1", "0.4", "100")) is True
    assert o.status is S.PARTIALLY_FILLED
    assert o.apply_fill(fill("e1", "0.4", "100")) is False  # resent by the venue
    assert o.filled_qty == Decimal("0.4")
    assert o.apply_fill(fill("e2", "0.6", "110")) is True
    assert o.status is S.FILLED
    assert o.avg_price == Decimal("106")


def test_overfill_is_refused() -> None:
    o = walk_to(S.ACCEPTED)
    with pytest.raises(Overfill):
        o.apply_fill(fill("e1", "2"))


def test_fill_after_cancel_is_counted_and_state_kept() -> None:
    o = walk_to(S.CANCELLED)
    assert o.apply_fill(fill("late", "0.5")) is True
    assert o.filled_qty == Decimal("0.5") and o.status is S.CANCELLED
