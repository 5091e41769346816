"""A wrong API secret makes Bybit answer 10004 with the string it signed, API key included
(issue 11.9): neither the key nor the secret may reach any output. Checked in-process (the error
texts and every log line) and on a whole `lorabot run --mode live` (its stdout and stderr)."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

import pytest

from adapters.bybit import errors
from adapters.bybit.private import BybitPrivateStream
from adapters.bybit.rest import BybitRest
from adapters.bybit.signing import VenueClock
from adapters.bybit.sim import Simulator
from bot.clock import LiveClock
from bot.log import setup_logging

from .harness import settings_for, sim_config

ROOT = Path(__file__).resolve().parents[2]
KEY = "KEYqz7LEAKCANARY1"
GOOD_SECRET = "the-right-secret-0001"
WRONG_SECRET = "SECRETqz7LEAKCANARY2"


class _NoHandler:
    def on_venue_order(self, _: object) -> None: ...
    def on_execution(self, _: object) -> None: ...
    def on_position(self, _: object) -> None: ...
    def on_wallet(self, _: object) -> None: ...
    async def on_private_connected(self, _: bool) -> None: ...


def assert_clean(text: str, where: str) -> None:
    assert KEY not in text, f"the API key leaked into {where}: {text[-2000:]}"
    assert WRONG_SECRET not in text, f"the API secret leaked into {where}: {text[-2000:]}"


@pytest.fixture
async def keyed_sim() -> object:
    simulator = Simulator(sim_config(api_key=KEY, api_secret=GOOD_SECRET))
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()


async def test_a_wrong_secret_leaks_no_credential_in_errors_or_logs(keyed_sim: Simulator) -> None:
    settings = settings_for(keyed_sim)
    lines = io.StringIO()
    setup_logging("debug", "json", stream=lines)
    try:
        rest = BybitRest(
            settings.bybit, keyed_sim.url, LiveClock(), api_key=KEY, api_secret=WRONG_SECRET
        )
        async with rest:
            with pytest.raises(errors.CredentialsError) as refused:
                await rest.wallet()
        assert refused.value.code == 10004
        assert "***" in str(refused.value)  # the venue's echo is there, masked
        assert_clean(f"{refused.value} {refused.value.args} {refused.value.message}", "REST error")

        private = BybitPrivateStream(
            settings.bybit,
            f"{keyed_sim.url.replace('http', 'ws')}/v5/private",
            KEY,
            WRONG_SECRET,
            VenueClock(LiveClock()),
            _NoHandler(),
            lambda: asyncio.sleep(0),
        )
        with pytest.raises(errors.CredentialsError) as ws_refused:
            await asyncio.wait_for(private.run(), 10)
        assert_clean(f"{ws_refused.value} {ws_refused.value.args}", "websocket auth error")
    finally:
        setup_logging("info", "console")
    assert_clean(lines.getvalue(), "the log")


def _config(tmp_path: Path, sim: Simulator) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(f"""
[store]
url = "sqlite:///{tmp_path / "live.sqlite"}"
cache_dir = "{tmp_path / "cache"}"
[model]
backend = "lexicon"
[bybit]
rest_url = "{sim.url}"
rest_timeout = "3s"
connect_timeout = "2s"
[log]
format = "json"
level = "debug"
""")
    return config


async def test_a_live_run_with_a_wrong_secret_prints_neither_key_nor_secret(
    keyed_sim: Simulator, tmp_path: Path
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        "--mode",
        "live",
        "--config",
        str(_config(tmp_path, keyed_sim)),
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BYBIT_API_KEY": KEY,
            "BYBIT_API_SECRET": WRONG_SECRET,
            "XDG_DATA_HOME": str(tmp_path / "data"),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = stdout.decode() + stderr.decode()
    assert process.returncode != 0, output[-3000:]
    assert "10004" in output, output[-3000:]  # it did fail on the signature, and said so
    assert_clean(output, "the run's output")
    for path in tmp_path.rglob("*"):  # log files and anything else the run wrote
        if path.is_file() and path.suffix not in (".sqlite", ".sqlite-wal", ".sqlite-shm"):
            assert_clean(path.read_text(errors="replace"), str(path))
