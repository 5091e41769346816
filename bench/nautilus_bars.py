"""nautilus_trader's BacktestEngine on a bars CSV, for comparison with `lorabot backtest`.

Run with a Python that has nautilus_trader installed (bench/engine_throughput.py makes one in
.bench-env). The strategy reads each bar's close and does nothing else; bars go through
nautilus's own BarDataWrangler. Prints one JSON line: bars, seconds (CSV read + wrangle + run).
"""

from __future__ import annotations

import json
import sys
import time
from decimal import Decimal

import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
from nautilus_trader.config import LoggingConfig, StrategyConfig
from nautilus_trader.model import BarType, Money, TraderId, Venue
from nautilus_trader.model.currencies import USDT
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import AccountType, OmsType
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.test_kit.providers import TestInstrumentProvider
from nautilus_trader.trading.strategy import Strategy


class CloseReaderConfig(StrategyConfig, frozen=True):
    bar_type: str


class CloseReader(Strategy):
    def __init__(self, config: CloseReaderConfig) -> None:
        super().__init__(config)
        self.bar_type = BarType.from_str(config.bar_type)
        self.count = 0
        self.last_close = 0.0

    def on_start(self) -> None:
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.count += 1
        self.last_close = bar.close.as_double()


def main(path: str) -> None:
    started = time.perf_counter()
    frame = pd.read_csv(path)
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    frame = frame.set_index("timestamp")
    instrument = TestInstrumentProvider.btcusdt_perp_binance()
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
    bars = BarDataWrangler(bar_type, instrument).process(frame)
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("BENCH-001"), logging=LoggingConfig(log_level="ERROR")
        )
    )
    engine.add_venue(
        Venue("BINANCE"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=None,
        starting_balances=[Money(Decimal(10_000), USDT)],
    )
    engine.add_instrument(instrument)
    engine.add_data(bars)
    strategy = CloseReader(CloseReaderConfig(bar_type=str(bar_type)))
    engine.add_strategy(strategy)
    engine.run()
    elapsed = time.perf_counter() - started
    print(json.dumps({"bars": strategy.count, "seconds": elapsed}))
    engine.dispose()


if __name__ == "__main__":
    main(sys.argv[1])
