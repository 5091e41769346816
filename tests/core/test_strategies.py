from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from bot.events import Label, Signal
from bot.symbols import Instrument
from strategies.risk import RiskGate, RiskParams
from strategies.sizing import target_qty, within_band
from strategies.vote import SignalWindow, VoteParams, decide, vote

T = datetime(2024, 1, 1, tzinfo=UTC)
BTC = Instrument("BTCUSDT", "linear", D("0.1"), D("0.001"), D("0.001"), D("5"))
SPOT = Instrument("BTCUSDT", "spot", D("0.01"), D("0.0001"), D("0.0001"), D("5"))


def sig(
    label: Label,
    conf: float,
    minutes_ago: float = 0,
    *,
    symbol: str | None = "BTCUSDT",
    weight: float = 1.0,
    source: str = "s",
    stale: bool = False,
) -> Signal:
    at = T - timedelta(minutes=minutes_ago)
    probs = [0.0, 0.0, 0.0]
    probs[label] = conf
    return Signal(
        at,
        symbol,
        label,
        conf,
        (probs[0], probs[1], probs[2]),
        "m",
        source,
        "n",
        at,
        at,
        weight,
        stale,
    )


def params(**kw: object) -> VoteParams:
    base: dict[str, object] = {
        "window": timedelta(hours=6),
        "half_life": None,
        "threshold": 0.6,
        "aggregation": "share",  # these tests pin the share vote's arithmetic
    }
    base.update(kw)
    return VoteParams(**base)  # type: ignore[arg-type]


def test_confidence_weighted_shares() -> None:
    c = vote(
        [sig(Label.BULLISH, 0.9), sig(Label.BULLISH, 0.6), sig(Label.BEARISH, 0.5)], T, params()
    )
    assert c.label is Label.BULLISH and c.n_signals == 3
    assert c.confidence == pytest.approx(1.5 / 2.0)
    assert c.shares == pytest.approx((0.25, 0.0, 0.75))


def test_age_decay_window_weights_and_stale() -> None:
    p = params(half_life=timedelta(hours=1), source_weights={"loud": 3.0})
    old_bull = sig(Label.BULLISH, 1.0, minutes_ago=120)  # weight 0.25 after two half-lives
    new_bear = sig(Label.BEARISH, 0.5, minutes_ago=0)
    assert vote([old_bull, new_bear], T, p).label is Label.BEARISH
    assert vote([sig(Label.BULLISH, 0.9, minutes_ago=400)], T, p).label is None  # out of window
    loud = sig(Label.BULLISH, 0.3, source="loud")
    assert vote([loud, sig(Label.BEARISH, 0.8)], T, p).label is Label.BULLISH
    assert vote([sig(Label.BULLISH, 0.9, stale=True)], T, p).label is None
    assert vote([sig(Label.BULLISH, 0.9, stale=True)], T, params(trade_stale=True)).label


def test_ties_go_to_neutral() -> None:
    c = vote(
        [sig(Label.BULLISH, 0.5), sig(Label.BEARISH, 0.5), sig(Label.NEUTRAL, 0.5)], T, params()
    )
    assert c.label is Label.NEUTRAL


def test_market_wide_signals_count_for_every_symbol() -> None:
    window = SignalWindow(params())
    window.add(sig(Label.BULLISH, 0.8, symbol=None, weight=0.5))
    assert window.composite("BTCUSDT", T).label is Label.BULLISH
    assert window.composite("ETHUSDT", T).label is Label.BULLISH


@pytest.mark.parametrize(
    ("label", "conf", "policy", "can_short", "direction"),
    [
        (Label.BULLISH, 0.9, "hold", True, 1),
        (Label.BEARISH, 0.9, "hold", True, -1),
        (Label.BEARISH, 0.9, "hold", False, 0),  # spot is long-only
        (Label.NEUTRAL, 0.9, "hold", True, 0),  # neutral means flat
        (Label.BULLISH, 0.5, "hold", True, None),  # below threshold: unchanged
        (Label.BULLISH, 0.5, "flat", True, 0),
    ],
)
def test_decisions(
    label: Label, conf: float, policy: str, can_short: bool, direction: int | None
) -> None:
    c = vote(
        [sig(label, conf), sig(Label.NEUTRAL, (1 - conf) if conf < 1 else 0.0)],
        T,
        params(below_threshold=policy),
    )
    assert decide(c, params(below_threshold=policy), can_short).direction == direction


def test_sizing_rounds_down_to_lot_and_caps() -> None:
    qty = target_qty(1, 0.8, D("10000"), D("40000"), 0.5, 1.0, BTC)
    assert qty == D("0.100")  # 10000 * 0.4 / 40000 = 0.1
    assert target_qty(-1, 0.77, D("10000"), D("40000"), 0.5, 1.0, BTC) == D("-0.096")
    assert target_qty(1, 1.0, D("10000"), D("40000"), 3.0, 1.0, BTC) == D("0.250")  # capped
    assert target_qty(1, 0.1, D("100"), D("40000"), 0.5, 1.0, BTC) == 0  # under min qty
    assert within_band(D("1"), D("1.05"), 0.1) and not within_band(D("1"), D("-1"), 0.1)


def gate(**kw: object) -> RiskGate:
    base: dict[str, object] = {"max_notional": D("50000"), "max_price_age": timedelta(minutes=2)}
    base.update(kw)
    return RiskGate(RiskParams(**base))  # type: ignore[arg-type]


def check(
    g: RiskGate,
    target: str,
    current: str = "0",
    price_age: timedelta = timedelta(0),
    every: timedelta | None = None,
) -> object:
    return g.check(
        symbol="BTCUSDT",
        now=T,
        current=D(current),
        target=D(target),
        price=D("40000"),
        price_ts=T - price_age,
        expected_every=every,
        instrument=BTC,
    )


def test_risk_clips_to_caps() -> None:
    assert check(gate(), "2").qty == D("1.25")  # type: ignore[attr-defined]
    assert check(gate(max_position={"BTCUSDT": D("0.5")}), "-2").qty == D("-0.5")  # type: ignore[attr-defined]


def test_risk_refuses_stale_prices_relative_to_the_expected_update() -> None:
    assert check(gate(), "1", price_age=timedelta(minutes=3)).qty is None  # type: ignore[attr-defined]
    # an hourly bar closed 50 minutes ago is not overdue yet
    fresh = check(gate(), "1", price_age=timedelta(minutes=50), every=timedelta(hours=1))
    assert fresh.qty == D("1")  # type: ignore[attr-defined]


def test_kill_switch_and_daily_loss_only_allow_flattening() -> None:
    g = gate(max_daily_loss=0.05)
    assert g.on_equity(T, D("10000")) is False
    assert g.on_equity(T + timedelta(hours=1), D("9400")) is True
    assert g.halted
    assert check(g, "1", current="0").qty is None  # type: ignore[attr-defined]
    assert check(g, "1", current="0.5").qty == 0  # type: ignore[attr-defined]
    g.on_equity(T + timedelta(days=1), D("9400"))  # a new UTC day
    assert not g.halted
    g.kill_switch = True
    assert check(g, "1", current="-1").qty == 0  # type: ignore[attr-defined]


def test_order_rate_limit() -> None:
    g = gate(max_orders_per_minute=2)
    assert g.allow_order(T) and g.allow_order(T) and not g.allow_order(T)
    assert g.allow_order(T + timedelta(seconds=61))


# -- the evidence vote (issue 15) -------------------------------------------------------------


def _signal(probs: tuple[float, float, float], minutes: int = 0) -> Signal:
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    best = max(range(3), key=lambda i: probs[i])
    return Signal(
        ts=at,
        symbol="BTCUSDT",
        label=Label(best),
        confidence=probs[best],
        probs=probs,
        model_id="m",
        source="s",
        news_id=f"n{minutes}",
        published=at,
        received=at,
    )


def _full_size_share(signals: list[Signal], prior: float) -> float:
    """The target as a share of full size (fraction x equity), through the vote and sizing."""
    from bot.config import Settings
    from bot.symbols import SymbolTable

    params = VoteParams(
        window=timedelta(hours=6),
        half_life=None,
        threshold=0.6,
        aggregation="evidence",
        prior_weight=prior,
    )
    now = signals[-1].received
    composite = vote(signals, now, params)
    decision = decide(composite, params, can_short=True)
    instrument = SymbolTable.from_settings(Settings()).instrument("BTCUSDT")
    equity, price = D("1000000"), D("40000")
    if decision.direction is None:
        return 0.0
    qty = target_qty(decision.direction, composite.confidence, equity, price, 0.5, 1.0, instrument)
    full = equity * D("0.5") / price
    return float(abs(qty) / full)


def test_one_coin_flip_headline_barely_moves_the_target_under_the_evidence_vote() -> None:
    # "Bitcoin is not going to crash, analysts say": bullish 0.471 against bearish 0.469
    assert _full_size_share([_signal((0.469, 0.060, 0.471))], prior=0.5) < 0.1


def test_ten_agreeing_confident_headlines_move_it_to_nine_tenths_of_full_size() -> None:
    strong = [_signal((0.02, 0.03, 0.95), minutes=i) for i in range(10)]
    assert _full_size_share(strong, prior=0.5) >= 0.9


def test_the_share_vote_gives_a_lone_coin_flip_the_whole_composite() -> None:
    params = VoteParams(
        window=timedelta(hours=6), half_life=None, threshold=0.6, aggregation="share"
    )
    flip = _signal((0.469, 0.060, 0.471))
    assert vote([flip], flip.received, params).confidence == 1.0
