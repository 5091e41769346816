"""The console's Prometheus metrics, on a registry of its own (two daemons in one test process,
or a test's own collectors, never collide with the process-wide default registry).

Counters and histograms are fed by `Observer` on the main loop as events pass on the bus (the
news-to-order histogram by the daemon's probe, bot/latency.py, the benchmark's measurement);
gauges are set from each tick's snapshot; `/metrics` renders them from the console's thread
(prometheus-client's metrics are thread-safe).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

# Seconds: a headline is classified in milliseconds to seconds, an order follows in
# milliseconds (the news-to-order target is p50 <= 10 ms, p99 <= 30 ms: buckets either side).
_LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)


class ConsoleMetrics:
    """Everything `/metrics` shows, named `lorabot_*`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.news_items = Counter("lorabot_news_items", "News items received", ["feed"], registry=r)
        self.signals = Counter(
            "lorabot_signals", "Model answers, by feed and label", ["feed", "label"], registry=r
        )
        self.decisions = Counter(
            "lorabot_decisions", "Decision records, by outcome", ["outcome"], registry=r
        )
        self.classify_latency = Histogram(
            "lorabot_classify_latency_seconds",
            "From a news item's arrival to the model's answer",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.news_to_order = Histogram(
            "lorabot_news_to_order_latency_seconds",
            "From a news item's publication on the bus to the broker being asked to place the"
            " order it caused (bot/latency.py)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.order_updates = Counter(
            "lorabot_order_updates", "Order state changes, by new status", ["status"], registry=r
        )
        self.fills = Counter("lorabot_fills", "Fills, by symbol", ["symbol"], registry=r)
        self.source_errors = Counter(
            "lorabot_source_errors", "Failures of a news or market source", ["source"], registry=r
        )
        self.equity = Gauge("lorabot_equity", "Account equity (quote currency)", registry=r)
        self.cash = Gauge("lorabot_cash", "Account cash (quote currency)", registry=r)
        self.position_notional = Gauge(
            "lorabot_position_notional", "Absolute position notional", ["symbol"], registry=r
        )
        self.open_orders = Gauge(
            "lorabot_open_orders", "Open orders, by status", ["status"], registry=r
        )
        self.kill_switch = Gauge("lorabot_kill_switch", "1 while the kill switch is on", registry=r)
        self.heartbeat = Gauge(
            "lorabot_heartbeat_timestamp_seconds",
            "When the main loop last made progress (Unix time)",
            registry=r,
        )
        self.heartbeat_age = Gauge(
            "lorabot_heartbeat_age_seconds",
            "Seconds since the main loop last made progress",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
