"""`Console`: what the daemon starts beside the engine (web console, Telegram, sd_notify).

The daemon calls three things on the main loop: `start()` once the engine runs, `tick(now)`
every second (the snapshot, the heartbeat, the watchdog ping) and `stop()`. Telegram and other
companions run on the console's thread and read through the same `ConsoleReader` methods.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from bot.assemble import Parts
from bot.config import Settings
from bot.console.app import ConsoleContext, build_app
from bot.console.auth import check_bind, is_loopback, split_listen
from bot.console.kill import set_kill_switch
from bot.console.metrics import ConsoleMetrics
from bot.console.quality import SignalQuality
from bot.console.queries import ConsoleQueries
from bot.console.redact import redacted_config
from bot.console.sd_notify import SdNotifier
from bot.console.server import Companion, ConsoleServer
from bot.console.state import ConsoleState, Observer, RunInfo, take_snapshot
from bot.events import Fill, Signal
from bot.log import get_logger, listen_for_warnings

log = get_logger("bot.console")


class Console:
    def __init__(
        self,
        settings: Settings,
        parts: Parts,
        info: RunInfo,
        *,
        token: str | None,
        notifier: SdNotifier | None = None,
    ) -> None:
        api = settings.api
        if api.enabled:
            check_bind(api.listen, token)
        self.settings = settings
        self.parts = parts
        self.info = info
        self.notifier = notifier
        self.metrics = ConsoleMetrics()
        self.observer = Observer(self.metrics)
        self.observer.attach(parts.bus)
        if parts.latency is not None:  # the same measurement as bench/news_to_order.py
            parts.latency.listeners.append(self.metrics.news_to_order.observe)
        self.quality = SignalQuality(self._price)
        parts.bus.subscribe(Signal, self.quality.on_signal)
        self.state = ConsoleState(api.stale_after)
        self.queries = ConsoleQueries(settings.store_url, info.account)
        self.kill_path = settings.kill_switch_path
        app = None
        if api.enabled:
            context = ConsoleContext(
                state=self.state,
                queries=self.queries,
                metrics=self.metrics,
                clock=parts.clock,
                config=redacted_config(settings),
                kill_path=self.kill_path,
                backtests_dir=settings.data_dir / "backtests",
                token=token,
                token_for_reads=not is_loopback(split_listen(api.listen)[0]),
            )
            app = build_app(context)
        self.server = ConsoleServer(app, api.listen)
        self._kill_seen = False
        self._stop_listening: Callable[[], None] = lambda: None
        self.serving = False
        self.alerts: list[Callable[[str], None]] = []  # on the console's thread

    # -- wiring ------------------------------------------------------------------------------

    def add_companion(self, companion: Companion) -> None:
        self.server.companions.append(companion)

    def on_fill(self, listener: Callable[[Fill], None]) -> None:
        """`listener` is told of each fill on the console's thread."""
        self.observer.listeners.append(lambda fill: self.server.call(lambda: listener(fill)))

    def alert(self, text: str) -> None:
        """Tell every alert listener (Telegram), from any thread."""
        for listener in self.alerts:
            self.server.call(functools.partial(listener, text))

    # -- the main loop's side ----------------------------------------------------------------

    def start(self) -> None:
        self._stop_listening = listen_for_warnings(self.state.note_log)
        self.tick(self.parts.clock.now())
        try:
            self.server.start()
        except OSError as error:
            log.warning(
                "console not served: cannot listen (the daemon trades on without it)",
                listen=self.settings.api.listen,
                error=str(error),
            )
        else:
            self.serving = self.server.app is not None
            if self.serving:
                host, _ = split_listen(self.settings.api.listen)
                log.info("console serving", url=f"http://{host}:{self.server.port}/")
        if self.notifier is not None:
            self.notifier.ready(f"trading ({self.info.mode}, account {self.info.account})")

    def _price(self, symbol: str) -> Decimal | None:
        price = self.parts.engine.prices.get(symbol)
        return None if price is None else price.price

    def tick(self, now: datetime) -> None:
        snapshot = take_snapshot(self.parts, self.info, self.observer, now)
        self.quality.tick(now)
        snapshot["quality"] = self.quality.table()
        self.state.publish(snapshot, now)
        kill = bool(snapshot["kill_switch"])
        if kill != self._kill_seen:
            self._kill_seen = kill
            self.alert("kill switch ON: flattened and halted" if kill else "kill switch off")
        if self.notifier is not None:
            self.notifier.send(
                "WATCHDOG=1",
                f"STATUS=equity {snapshot['equity']}, {snapshot['decisions']} decisions, "
                f"{snapshot['fills']} fills{', KILL SWITCH ON' if kill else ''}",
            )

    def source_failed(self, source: str, error: str) -> None:
        self.observer.on_source_error(source, error, self.parts.clock.now())

    def fatal(self, error: BaseException) -> None:
        self.alert(f"lorabot stopping on a fatal error: {error}")

    def stop(self) -> None:
        self._stop_listening()
        if self.notifier is not None:
            self.notifier.stopping()
        self.server.stop()
        self.queries.close()
        if self.notifier is not None:
            self.notifier.close()

    # -- what companions read (console thread) -----------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return self.state.current()[1]

    def decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        return self.queries.decisions(limit)

    def set_kill(self, on: bool, reason: str) -> bool:
        return set_kill_switch(self.kill_path, on, self.parts.clock.now(), reason)


def build_console(
    settings: Settings, parts: Parts, info: RunInfo, sd_notify: bool
) -> Console | None:
    """The daemon's console, or None when neither the web console, Telegram nor sd_notify is on
    (then nothing observes the bus and no tick runs)."""
    import os

    from bot.console.auth import TOKEN_ENV

    if not (settings.api.enabled or settings.telegram.enabled or sd_notify):
        return None
    return Console(
        settings,
        parts,
        info,
        token=os.environ.get(TOKEN_ENV) or None,
        notifier=SdNotifier() if sd_notify else None,
    )
