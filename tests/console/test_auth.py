"""The token rules: the kill switch needs `LORABOT_API_TOKEN` (compared in constant time), a
non-loopback bind is refused without one, and with one every request but /health needs it."""

from __future__ import annotations

import hmac
import json
import subprocess
from pathlib import Path

import pytest

from bot.console.auth import bearer_ok, check_bind, is_loopback
from bot.errors import UserError
from tests.console.daemon import SECRETS, console_config, start
from tests.core.store_daemon import bot_command, environment, replay_files, wait_for


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (None, False),
        ("", False),
        ("Bearer", False),
        ("Bearer wrong", False),
        ("Basic s3cret", False),
        ("Bearer s3cre", False),
        ("Bearer s3cret!", False),
        ("Bearer s3cret", True),
        ("bearer s3cret", True),
    ],
)
def test_bearer_token(header: str | None, ok: bool) -> None:
    assert bearer_ok(header, "s3cret") is ok


def test_no_configured_token_opens_nothing() -> None:
    assert not bearer_ok("Bearer ", None) and not bearer_ok("Bearer ", "")


def test_the_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert bearer_ok("Bearer abc", "abd") is False
    assert calls == [(b"abc", b"abd")]


@pytest.mark.parametrize(
    ("listen", "loopback"),
    [("127.0.0.1:8080", True), ("127.9.9.9:1", True), ("[::1]:8080", True),
     ("localhost:80", True), ("0.0.0.0:8080", False), ("192.168.1.5:8080", False),
     ("[::]:8080", False), ("example.org:80", False)],
)  # fmt: skip
def test_a_non_loopback_bind_needs_a_token(listen: str, loopback: bool) -> None:
    host = listen.rpartition(":")[0].strip("[]")
    assert is_loopback(host) is loopback
    check_bind(listen, "token")  # with a token, any address
    if loopback:
        check_bind(listen, None)
    else:
        with pytest.raises(UserError, match="LORABOT_API_TOKEN"):
            check_bind(listen, None)


def test_the_daemon_refuses_a_public_bind_without_a_token(tmp_path: Path) -> None:
    news, bars = replay_files(tmp_path, 16)
    config = console_config(tmp_path, listen="0.0.0.0:0")
    env = {k: v for k, v in environment(tmp_path / "xdg").items() if k != "LORABOT_API_TOKEN"}
    result = subprocess.run(
        bot_command("run", "--config", config, "--replay-news", news, "--replay-bars", bars),
        env=env,
        capture_output=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.decode().splitlines() if "0.0.0.0:0" in line]
    assert len(errors) == 1 and "LORABOT_API_TOKEN" in errors[0], result.stderr.decode()[-2000:]


@pytest.mark.slow
def test_with_a_token_a_public_bind_asks_every_request_for_it(tmp_path: Path) -> None:
    daemon = start(tmp_path, bars=120, listen="0.0.0.0:0")
    try:
        token = SECRETS["LORABOT_API_TOKEN"]
        assert daemon.get("/api/v1/status")[0] == 401
        assert daemon.get("/api/v1/status", token="wrong")[0] == 401
        assert daemon.get("/metrics")[0] == 401
        assert daemon.get("/")[0] == 401
        status, body, _ = daemon.get("/api/v1/status", token=token)
        assert status == 200 and json.loads(body)["mode"] == "paper"
        wait_for(lambda: daemon.get("/health")[0] == 200, 10, "/health without the token")
    finally:
        daemon.stop()
