"""Protective exits fill at the documented price on crafted bars (issue 15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from strategies.exits import (
    Exit,
    ExitBook,
    ExitConfigError,
    ExitRules,
    Held,
    Level,
    TrueRange,
    after_bar,
    check_bar,
)

T = datetime(2024, 1, 1, tzinfo=UTC)


def rules(**levels: str) -> ExitRules:
    hold = levels.pop("max_hold", None)
    parsed = {k: Level.parse(v, k) for k, v in levels.items()}
    return ExitRules(max_hold=timedelta(hours=float(hold)) if hold else None, **parsed)  # type: ignore[arg-type]


def long_at(entry: str, atr: str | None = None) -> Held:
    return Held(side=1, entry=D(entry), since=T, atr=D(atr) if atr else None, best=D(entry))


def bar(o: str, h: str, low: str, hours: int = 1) -> dict[str, object]:
    return {"ts_open": T + timedelta(hours=hours), "open_": D(o), "high": D(h), "low": D(low)}


def test_levels_parse_percent_and_atr_and_refuse_anything_else() -> None:
    assert Level.parse("2%", "stop_loss") == Level(D("2"), "%")
    assert Level.parse("1.5ATR", "stop_loss") == Level(D("1.5"), "atr")
    assert Level.parse("", "stop_loss") is None
    with pytest.raises(ExitConfigError, match="stop_loss = 'two'"):
        Level.parse("two", "stop_loss")
    with pytest.raises(ExitConfigError, match="above zero"):
        Level.parse("0%", "take_profit")


def test_a_stop_inside_the_bar_fills_at_the_stop() -> None:
    exit_ = check_bar(rules(stop_loss="2%"), long_at("100"), **bar("99.5", "100.5", "97"))
    assert exit_ == Exit(D("98"), "stop_loss")


def test_a_gap_through_the_stop_fills_at_the_open() -> None:
    exit_ = check_bar(rules(stop_loss="2%"), long_at("100"), **bar("95", "96", "94"))
    assert exit_ == Exit(D("95"), "stop_loss")


def test_a_take_profit_inside_the_bar_fills_at_the_target() -> None:
    exit_ = check_bar(rules(take_profit="3%"), long_at("100"), **bar("101", "104", "100.5"))
    assert exit_ == Exit(D("103"), "take_profit")


def test_both_levels_inside_one_bar_take_the_pessimistic_stop() -> None:
    both = rules(stop_loss="2%", take_profit="3%")
    assert check_bar(both, long_at("100"), **bar("100", "104", "97")) == Exit(D("98"), "stop_loss")
    short = Held(side=-1, entry=D("100"), since=T, atr=None, best=D("100"))
    assert check_bar(both, short, **bar("100", "103", "96")) == Exit(D("102"), "stop_loss")


def test_the_trailing_stop_follows_the_best_price_before_the_bar() -> None:
    held = long_at("100")
    trailing = rules(trailing_stop="5%")
    assert check_bar(trailing, held, **bar("101", "110", "100")) is None  # 95 not touched
    after_bar(held, D("110"), D("100"))
    # the stop is now 110 - 5 (5% of the entry) = 105
    assert check_bar(trailing, held, **bar("108", "109", "104", 2)) == Exit(
        D("105"), "trailing_stop"
    )


def test_atr_levels_wait_for_an_atr_and_then_scale_with_it() -> None:
    atr_stop = rules(stop_loss="2atr")
    assert check_bar(atr_stop, long_at("100"), **bar("99", "100", "90")) is None  # no ATR yet
    exit_ = check_bar(atr_stop, long_at("100", atr="1.5"), **bar("99", "100", "96"))
    assert exit_ == Exit(D("97.0"), "stop_loss")


def test_max_hold_exits_at_the_open_of_the_first_bar_past_it() -> None:
    held = long_at("100")
    hold = rules(max_hold="4")
    assert check_bar(hold, held, **bar("100", "101", "99", hours=3)) is None
    assert check_bar(hold, held, **bar("100.5", "101", "99", hours=4)) == Exit(
        D("100.5"), "max_hold"
    )


def test_true_range_is_wilders_average_from_past_bars() -> None:
    atr = TrueRange(period=3)
    for high, low, close in [("10", "8", "9"), ("11", "9", "10"), ("12", "9", "11")]:
        assert atr.value is None
        atr.update(D(high), D(low), D(close))
    assert atr.value == D("7") / 3  # true ranges 2, 2, 3
    atr.update(D("12"), D("11"), D("11.5"))  # true range max(1, 1, 0) = 1
    assert atr.value == (D("7") / 3 * 2 + 1) / 3


# -- through the engine and the paper broker ---------------------------------------------------


def test_a_stop_loss_closes_the_position_at_its_level_through_the_engine(tmp_path: Path) -> None:
    from bot.events import Decision, Fill, Label, Outcome

    from .helpers import bar as engine_bar
    from .helpers import drive, news, replay_parts, settings

    bull = "Bitcoin rallies on huge inflows"
    config = settings(strategy={"half_life": 0, "reevaluate_interval": "15m"})
    parts = replay_parts(tmp_path, {bull: (Label.BULLISH, 0.9)}, config)
    parts.engine.exits = ExitBook(rules(stop_loss="2%"))
    fills: list[Fill] = []
    decisions: list[Decision] = []
    parts.bus.subscribe(Fill, fills.append)
    parts.bus.subscribe(Decision, decisions.append)
    bars = [engine_bar(i, "40000") for i in range(3)]
    crash = engine_bar(3, "38000", open_="39900", high="39950", low="38000")
    after = [engine_bar(i, "38500") for i in range(4, 8)]
    first_news = news("a", bull, bars[0].ts + timedelta(minutes=1))
    drive(parts, [bars[0], first_news, *bars[1:], crash, *after])
    entry, exit_ = fills
    assert entry.side.value == "buy" and entry.price == D("40008.0")  # bar 1's open + 2 bps
    # 2% under the 40008 entry is 39207.84; a taker sell: 2 bps worse (39199.998...), rounded
    # down to the 0.1 tick
    assert exit_.side.value == "sell" and exit_.qty == entry.qty
    assert exit_.price == D("39199.9")
    assert exit_.ts == crash.ts
    order = parts.engine.orders[exit_.client_order_id]
    assert order.reason == "stop_loss" and order.reduce_only
    assert parts.engine.portfolio.qty("BTCUSDT") == 0
    exits = [d for d in decisions if d.trigger == "exit"]
    assert len(exits) == 1 and exits[0].order_id == exit_.client_order_id
    # the bullish news is still in the window, but re-votes wait for news before re-entering
    later = [d for d in decisions if d.trigger == "revote" and d.ts > crash.ts]
    assert later and all(d.outcome is Outcome.HOLD for d in later)


def test_liquidation_prices_follow_bybits_formulas() -> None:
    from strategies.margin import MarginRules, liquidation_price

    isolated = MarginRules(leverage=D("10"), mode="isolated", maintenance_rate=D("0.005"))
    assert liquidation_price(D("1"), D("40000"), isolated, rest_of_account=D(0)) == D("36200.000")
    assert liquidation_price(D("-1"), D("40000"), isolated, rest_of_account=D(0)) == D("43800.000")
    cross = MarginRules(leverage=D("5"), mode="cross", maintenance_rate=D("0.005"))
    # 10,000 of equity, a 1 BTC long bought at 40,000: cash is -30,000
    level = liquidation_price(D("1"), D("40000"), cross, rest_of_account=D("-30000"))
    assert level is not None and abs(level - D("30000") / D("0.995")) < D("1e-20")
    # a 1x long can lose everything and never be liquidated
    assert liquidation_price(D("0.25"), D("40000"), cross, rest_of_account=D("0")) is None


def test_a_crash_liquidates_a_leveraged_long_in_paper_mode(tmp_path: Path) -> None:
    from bot.events import Fill, Label
    from strategies.margin import MarginRules

    from .helpers import bar as engine_bar
    from .helpers import drive, news, replay_parts, settings

    bull = "Bitcoin rallies on huge inflows"
    config = settings(strategy={"fraction": 4.0, "max_fraction": 4.0}, risk={"max_notional": 1e6})
    parts = replay_parts(tmp_path, {bull: (Label.BULLISH, 0.9)}, config)
    rules = MarginRules(leverage=D("5"), mode="cross", maintenance_rate=D("0.005"))
    parts.engine.margins = {"BTCUSDT": rules}
    fills: list[Fill] = []
    parts.bus.subscribe(Fill, fills.append)
    bars = [engine_bar(i, "40000") for i in range(3)]
    crash = engine_bar(3, "20000", open_="39000", high="39000", low="20000")
    drive(parts, [bars[0], news("a", bull, bars[0].ts + timedelta(minutes=1)), *bars[1:], crash])
    entry, liquidation = fills
    assert entry.qty == D("1.000")  # 4 x 10,000 of equity at 40,008
    order = parts.engine.orders[liquidation.client_order_id]
    assert order.reason == "liquidation" and liquidation.ts == crash.ts
    # cash after the entry: 10,000 - 40,008 - fee; the level is where equity meets 0.5% of notional
    cash_after = D("10000") - entry.qty * entry.price - entry.fee
    level = -cash_after / (entry.qty * (1 - D("0.005")))
    assert liquidation.price <= level and liquidation.price > level * D("0.999")
    assert parts.engine.portfolio.qty("BTCUSDT") == 0


def test_a_target_is_clipped_to_what_the_margin_can_carry(tmp_path: Path) -> None:
    from bot.events import Fill, Label

    from .helpers import bar as engine_bar
    from .helpers import drive, news, replay_parts, settings

    bull = "Bitcoin rallies on huge inflows"
    config = settings(strategy={"fraction": 4.0, "max_fraction": 4.0}, risk={"max_notional": 1e6})
    parts = replay_parts(tmp_path, {bull: (Label.BULLISH, 0.9)}, config)  # 1x leverage: the default
    fills: list[Fill] = []
    parts.bus.subscribe(Fill, fills.append)
    bars = [engine_bar(i, "40000") for i in range(3)]
    drive(parts, [bars[0], news("a", bull, bars[0].ts + timedelta(minutes=1)), *bars[1:]])
    (entry,) = fills
    assert entry.qty == D("0.250")  # 10,000 of equity at 1x: 0.25 BTC, not 4 x that


def test_a_leverage_above_the_cap_is_refused_at_start_naming_both_keys(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text('[symbols.BTCUSDT]\nleverage = "20"\n[news]\nfeeds = []\n')
    result = subprocess.run(
        [sys.executable, "-m", "bot", "backtest", "--sample", "--config", str(config)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        timeout=120,
    )
    assert result.returncode != 0
    assert "[symbols.BTCUSDT] leverage = 20 is above [risk] max_leverage = 10" in result.stderr


def test_exit_levels_in_config_are_checked_at_load() -> None:
    from bot.config import ConfigError, settings_from_dict

    with pytest.raises(ConfigError, match="stop_loss"):
        settings_from_dict({"strategy": {"stop_loss": "two percent"}})
    settings = settings_from_dict({"strategy": {"stop_loss": "2%", "max_hold": "1d"}})
    from strategies.vote_strategy import exit_rules

    rules = exit_rules(settings.strategy)
    assert rules.stop_loss == Level(D("2"), "%") and rules.max_hold == timedelta(days=1)
