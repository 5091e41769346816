"""lorabot's event-driven core: events, bus, clocks, engine, portfolio, store, config and CLI.

Importing `bot` stays light (no torch): model stacks are imported lazily by the adapters that need
them, so `lorabot --help`, `lorabot status` and a lexicon backtest start fast.
"""

__version__ = "0.1.0"
