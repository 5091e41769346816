"""Telegram against a local fake Bot API server: the daemon's bot answers /status /positions
/profit /decisions /kill in the configured chat only, and notifies it of fills and the kill
switch. The library's base URL is pointed at 127.0.0.1 (`[telegram] api_url`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.telegram.messages import decisions_text, profit_text, seconds_until
from tests.console.daemon import SECRETS, kill_file, start, wait_decisions
from tests.console.fake_telegram import FakeBotApi
from tests.core.store_daemon import log_records, wait_for

CHAT, STRANGER = 4242, 666


def test_the_next_daily_summary() -> None:
    now = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    assert seconds_until("09:00", now) == 1800
    assert seconds_until("08:30", now) == 86400  # just passed: tomorrow's
    assert seconds_until("00:00", now) == 15.5 * 3600


def test_message_texts() -> None:
    snap = {"equity": "10100.00", "initial_cash": "10000.00", "realised_pnl": "90.00",
            "unrealised_pnl": "10.00", "fees": "1.00"}  # fmt: skip
    assert profit_text(snap).startswith("equity 10100.00 (+100.00 since 10000.00)")
    row = {"ts": "2026-03-01T08:30:01Z", "symbol": "BTCUSDT", "outcome": "risk cap",
           "headline": "Bitcoin surges", "news_id": "n1", "trigger": "news"}  # fmt: skip
    assert decisions_text([row]) == "08:30:01 BTCUSDT risk cap: Bitcoin surges"


@pytest.mark.slow
def test_commands_only_for_the_configured_chat(tmp_path: Path) -> None:
    api = FakeBotApi(SECRETS["LORABOT_TELEGRAM_TOKEN"]).start()
    config = f'[telegram]\nenabled = true\nchat_id = {CHAT}\napi_url = "{api.url}"\n'
    daemon = start(tmp_path, bars=240, extra_config=config)
    try:
        wait_decisions(daemon, 2)
        api.command(STRANGER, "/kill")
        api.command(STRANGER, "/status")
        api.command(CHAT, "/status")
        api.command(CHAT, "/positions")
        api.command(CHAT, "/profit")
        api.command(CHAT, "/decisions")

        def answered() -> bool:
            texts = api.messages_to(CHAT)
            return any(" order: Bitcoin " in t for t in texts) and any(
                t.startswith("equity ") for t in texts
            )

        wait_for(answered, 30, "the answers")
        texts = api.messages_to(CHAT)
        assert any(t.startswith("lorabot paper · paper") for t in texts)
        assert any(t.startswith("equity ") and "since 10000.00" in t for t in texts)
        assert any(" order: Bitcoin " in t for t in texts)  # the decision log
        assert any(t.startswith("fill ") for t in texts)  # a notification
        assert not kill_file(daemon).exists()  # the stranger's /kill did nothing
        api.command(CHAT, "/kill")
        wait_for(lambda: kill_file(daemon).exists(), 15, "the kill file")
        wait_for(
            lambda: any("KILL" in t or "kill switch ON" in t for t in api.messages_to(CHAT)),
            15,
            "kill notice",
        )
        api.command(CHAT, "/kill off")
        wait_for(lambda: not kill_file(daemon).exists(), 15, "the kill switch off")
    finally:
        daemon.stop()
        api.stop()
    assert api.messages_to(STRANGER) == []
    assert api.wrong_token == 0 and "getUpdates" in api.calls
    assert SECRETS["LORABOT_TELEGRAM_TOKEN"].encode() not in daemon.log.read_bytes()


@pytest.mark.slow
def test_an_unreachable_bot_api_does_not_stop_the_daemon(tmp_path: Path) -> None:
    config = '[telegram]\nenabled = true\nchat_id = 1\napi_url = "http://127.0.0.1:9"\n'
    daemon = start(tmp_path, bars=120, extra_config=config)
    try:
        wait_decisions(daemon, 1)
        wait_for(
            lambda: any(
                r.get("event") == "console companion did not start" for r in log_records(daemon.log)
            ),
            30,
            "the error logged",
        )
        assert daemon.process.poll() is None
    finally:
        daemon.stop()
