"""Every news item ends in one decision record with its outcome (issue 13, point 3)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D
from pathlib import Path

from bot.events import Decision, Label, OrderRequest, Outcome

from .helpers import bar, drive, news, replay_parts, settings

BULL = "Bitcoin rallies on huge inflows"
BEAR = "Bitcoin slides after hack"
ETH = "Ether soars on upgrade"
ANSWERS = {
    BULL: (Label.BULLISH, 0.9),
    BEAR: (Label.BEARISH, 0.8),
    ETH: (Label.BULLISH, 0.9),
}


def run(tmp_path: Path, events_after_bar0: list[object], **strategy: object) -> list[Decision]:
    config = settings(strategy={"half_life": 0, "reevaluate_interval": 0, **strategy})
    parts = replay_parts(tmp_path, ANSWERS, config)
    decisions: list[Decision] = []
    parts.bus.subscribe(Decision, decisions.append)
    requests: list[OrderRequest] = []
    parts.bus.subscribe(OrderRequest, requests.append)
    bars = [bar(i, "40000") for i in range(8)]
    drive(parts, [bars[0], *events_after_bar0, *bars[1:]])
    orders = {o.client_order_id: o for o in parts.engine.orders.values()}
    for decision in decisions:
        if decision.outcome is Outcome.ORDER:
            assert orders[decision.order_id].decision_id == decision.id
    assert [r.decision_id for r in requests] == [
        d.id for d in decisions if d.outcome is Outcome.ORDER
    ]
    return decisions


def at(minutes: int) -> object:
    from .helpers import T0

    return T0 + timedelta(minutes=15 + minutes)  # after bar 0 closes


def test_a_headline_that_trades_has_its_order_in_its_record(tmp_path: Path) -> None:
    (only,) = run(tmp_path, [news("a", BULL, at(1))])  # type: ignore[arg-type]
    assert only.outcome is Outcome.ORDER and only.news_id == "a" and only.trigger == "news"
    assert only.label is Label.BULLISH and only.confidence == 0.9
    assert only.composite_label is Label.BULLISH and only.composite_confidence == 1.0
    assert only.target_before == 0 and only.target_after == D("0.125") and only.risk == "ok"
    assert only.order_id and only.source == "test"


def test_each_reason_for_no_order_is_named(tmp_path: Path) -> None:
    items = [
        news("a", BULL, at(1)),  # order
        news("b", BULL, at(2)),  # same composite, same size: unchanged
        news("s", BULL, at(3), stale=True),  # stale
        news("e", ETH, at(4), symbols=("ETHUSDT",)),  # not traded by this account
    ]
    decisions = run(tmp_path, items)  # type: ignore[arg-type]
    outcomes = {d.news_id: d.outcome for d in decisions}
    assert outcomes == {
        "a": Outcome.ORDER,
        "b": Outcome.UNCHANGED,
        "s": Outcome.STALE,
        "e": Outcome.NOT_TRADED,
    }
    assert len({d.id for d in decisions}) == len(decisions) == 4


def test_a_split_vote_is_below_threshold(tmp_path: Path) -> None:
    first, second = run(tmp_path, [news("a", BULL, at(1)), news("b", BEAR, at(2))])  # type: ignore[arg-type]
    assert first.outcome is Outcome.ORDER
    # 0.9 bullish against 0.8 bearish: a bullish share of 0.53, under the 0.6 threshold
    assert second.outcome is Outcome.BELOW_THRESHOLD and "below threshold" in second.reason
    assert second.composite_confidence < 0.6


def test_the_kill_switch_is_the_outcome_when_it_blocks(tmp_path: Path) -> None:
    parts = replay_parts(tmp_path, ANSWERS, settings())
    decisions: list[Decision] = []
    parts.bus.subscribe(Decision, decisions.append)
    bars = [bar(i, "40000") for i in range(4)]
    drive(parts, [bars[0]])
    parts.engine.set_kill_switch(True)
    drive(parts, [news("k", BULL, at(1)), *bars[1:]])
    (only,) = decisions
    assert only.outcome is Outcome.KILL_SWITCH and "kill switch" in only.risk
