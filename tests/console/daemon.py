"""A real `python -m bot run --mode paper --replay-news ... --replay-bars ...` for the console's
tests, with the console on a free port of 127.0.0.1 (read from the daemon's log)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.core.store_daemon import (
    bot_command,
    environment,
    log_records,
    replay_files,
    wait_for,
    write_config,
)

SECRETS = {
    "BYBIT_API_KEY": "bybitkeyAAAA1111zzzz",
    "BYBIT_API_SECRET": "bybitsecretBBBB2222yyyy",
    "LORABOT_API_TOKEN": "consoletokenCCCC3333xxxx",
    "LORABOT_TELEGRAM_TOKEN": "123456:telegramtokenDDDD4444",
}


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]
    log: Path
    url: str
    data_home: Path
    folder: Path

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes, dict[str, str]]:
        return request(self.url + path, token=token)

    def json(self, path: str) -> Any:
        status, body, _ = self.get(path)
        assert status == 200, (path, status, body[:300])
        return json.loads(body)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def request(
    url: str, *, token: str | None = None, method: str = "GET", timeout: float = 10
) -> tuple[int, bytes, dict[str, str]]:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    req = urllib.request.Request(
        url, method=method, headers=headers, data=b"" if method == "POST" else None
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def console_config(folder: Path, extra: str = "", listen: str = "127.0.0.1:0") -> Path:
    config = write_config(folder)
    config.write_text(
        config.read_text() + f'[api]\nlisten = "{listen}"\nstale_after = "3s"\n' + extra
    )
    return config


def start(
    folder: Path,
    *,
    bars: int = 480,
    extra_config: str = "",
    env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    wait_console: bool = True,
    listen: str = "127.0.0.1:0",
) -> Daemon:
    news, bars_file = replay_files(folder, bars)
    config = console_config(folder, extra_config, listen)
    data_home = folder / "xdg"
    log = folder / "daemon.log"
    command = bot_command(
        "run", "--mode", "paper", "--config", config,
        "--replay-news", news, "--replay-bars", bars_file, *args,
    )  # fmt: skip
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
        env={**environment(data_home), **SECRETS, **(env or {})},
        cwd=folder,
    )
    url = ""
    if wait_console:

        def served() -> bool:
            nonlocal url
            assert process.poll() is None, log.read_text()[-3000:]
            for record in log_records(log):
                if record.get("event") == "console serving":
                    url = record["url"].rstrip("/").replace("0.0.0.0", "127.0.0.1")
                    return True
            return False

        wait_for(served, 60, "the console serving")
    return Daemon(process, log, url, data_home, folder)


def wait_decisions(daemon: Daemon, n: int, timeout: float = 60) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def enough() -> bool:
        nonlocal rows
        rows = daemon.json("/api/v1/decisions?limit=50")["decisions"]
        return len(rows) >= n

    wait_for(enough, timeout, f"{n} decisions")
    return rows


def port_of(url: str) -> int:
    match = re.search(r":(\d+)$", url)
    assert match, url
    return int(match.group(1))


def kill_file(daemon: Daemon) -> Path:
    return daemon.data_home / "lorabot" / "KILL"
