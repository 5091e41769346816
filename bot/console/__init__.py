"""The operator's console: a read-only web dashboard, a JSON API, /health and /metrics.

How it keeps out of the trading loop's way, and why:
- It runs in its own thread with its own event loop (`server.py`), so a slow page or a long
  query never delays a headline, and `/health` can still answer (503) while the main loop is
  stuck.
- It reads only two things: a snapshot the main loop hands over once a tick (`state.py`; the
  engine's objects are never touched from the console's thread), and the database through its
  own read-only connection (`queries.py`).
- It writes only the kill-switch file (`kill.py`), the way `lorabot kill` does; the daemon's
  kill timer reads it.

`lorabot backtest` never builds it: only the daemon does (`bot.assemble.console_parts`).
"""
