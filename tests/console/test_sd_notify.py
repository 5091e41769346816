"""`lorabot run --sd-notify` speaks systemd's notify protocol: READY=1 once the engine runs,
STATUS= lines, and WATCHDOG=1 from the main loop's tick, to a NOTIFY_SOCKET the test listens on."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from bot.console.sd_notify import SdNotifier
from tests.console.daemon import start


def listen(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    return sock


def receive(sock: socket.socket, seconds: float) -> list[str]:
    messages: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return messages


def test_the_notifier_sends_datagrams_to_a_path_and_to_an_abstract_name(tmp_path: Path) -> None:
    sock = listen(tmp_path / "notify")
    notifier = SdNotifier(str(tmp_path / "notify"))
    assert notifier.ready("trading") and notifier.watchdog() and notifier.status("x")
    assert receive(sock, 0.5) == ["READY=1\nSTATUS=trading", "WATCHDOG=1", "STATUS=x"]
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    abstract.bind(b"\0lorabot-test-" + str(id(tmp_path)).encode())
    abstract.settimeout(1)
    SdNotifier("@lorabot-test-" + str(id(tmp_path))).watchdog()
    assert abstract.recv(100) == b"WATCHDOG=1"


def test_without_notify_socket_nothing_is_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SdNotifier()
    assert not notifier.enabled and not notifier.ready() and not notifier.watchdog()


def test_an_unreachable_socket_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    notifier = SdNotifier(str(tmp_path / "nobody-listens"))
    assert notifier.watchdog() is False and notifier.watchdog() is False


@pytest.mark.slow
def test_the_daemon_notifies_ready_status_and_watchdog(tmp_path: Path) -> None:
    sock = listen(tmp_path / "notify")
    daemon = start(
        tmp_path, bars=120, env={"NOTIFY_SOCKET": str(tmp_path / "notify")}, args=("--sd-notify",)
    )
    try:
        messages = receive(sock, 4.0)
    finally:
        daemon.stop()
    messages += receive(sock, 0.5)
    lines = [line for m in messages for line in m.splitlines()]
    assert lines.count("READY=1") == 1
    ready = lines.index("READY=1")
    assert lines[ready + 1].startswith("STATUS=trading (paper")
    watchdog = [i for i, line in enumerate(lines) if line == "WATCHDOG=1"]
    assert len(watchdog) >= 3  # one per tick (1 s) while the loop runs
    assert any(line.startswith("STATUS=equity ") for line in lines)
    assert lines[-1] == "STOPPING=1"
