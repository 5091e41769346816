"""`download-data`: paging /v5/market/kline into the canonical bars CSV, resuming, rate limits."""

from __future__ import annotations

import asyncio
import csv
import itertools
import os
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import pytest

from adapters.bybit.download import HEADER, download_klines
from adapters.bybit.rest import BybitRest
from adapters.bybit.sim import Simulator
from bot.clock import LiveClock
from bot.errors import InputError, UserError
from bot.events import parse_time

from .harness import settings_for, sim_config

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 1, 1, tzinfo=UTC)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


async def test_download_pages_into_the_canonical_csv(sim: Simulator, tmp_path: Path) -> None:
    out = tmp_path / "btc-5.csv"
    settings = settings_for(sim, download_rate=100)
    result = await download_klines(
        settings,
        "btcusdt",
        "5",
        START,
        START + timedelta(days=5),
        out,
        progress=False,
        clock=LiveClock(),
    )
    assert result.written == 5 * 288 and result.requests == 2  # 1000 bars a page
    assert out.read_text().splitlines()[0] == HEADER
    table = rows(out)
    assert table[0]["timestamp"] == "2024-01-01T00:00:00Z"
    assert table[-1]["timestamp"] == "2024-01-05T23:55:00Z"
    stamps = [parse_time(r["timestamp"]) for r in table]
    assert all(b - a == timedelta(minutes=5) for a, b in itertools.pairwise(stamps))
    async with BybitRest(settings.bybit, sim.url, LiveClock()) as rest:
        bars = await rest.klines(
            "linear",
            "BTCUSDT",
            "5",
            int(START.timestamp() * 1000),
            int(stamps[-1].timestamp() * 1000),
        )
    assert [
        (D(r["open"]), D(r["high"]), D(r["low"]), D(r["close"]), D(r["volume"])) for r in table
    ] == [(b.open, b.high, b.low, b.close, b.volume) for b in bars]
    assert 10_000 < float(table[0]["close"]) < 1_000_000


async def test_an_interrupted_download_resumes_without_repeats(
    sim: Simulator, tmp_path: Path
) -> None:
    settings = settings_for(sim, download_rate=100)
    end = START + timedelta(days=3)
    whole = tmp_path / "whole.csv"
    await download_klines(
        settings, "BTCUSDT", "15", START, end, whole, progress=False, clock=LiveClock()
    )
    part = tmp_path / "part.csv"
    lines = whole.read_text().splitlines(keepends=True)
    part.write_text("".join(lines[:100]) + lines[100][:17])  # killed mid-line
    result = await download_klines(
        settings, "BTCUSDT", "15", START, end, part, progress=False, clock=LiveClock()
    )
    assert result.resumed_after == parse_time(lines[99].split(",")[0])
    assert result.written == len(lines) - 100
    assert part.read_text() == whole.read_text()
    again = await download_klines(
        settings, "BTCUSDT", "15", START, end, part, progress=False, clock=LiveClock()
    )
    assert again.written == 0 and part.read_text() == whole.read_text()


async def test_rate_limit_answers_are_waited_out(sim: Simulator, tmp_path: Path) -> None:
    sim.faults.fail_rest("/v5/market/kline", 10006, count=2)
    sim.faults.fail_rest("/v5/market/kline", 403, count=1, http_status=403)
    out = tmp_path / "btc.csv"
    result = await download_klines(
        settings_for(sim, download_rate=100),
        "BTCUSDT",
        "60",
        START,
        START + timedelta(days=2),
        out,
        progress=False,
        clock=LiveClock(),
    )
    assert result.written == 48
    assert sum(1 for _, path in sim.requests if path == "/v5/market/kline") == 4


async def test_only_closed_bars_are_written(tmp_path: Path) -> None:
    async with Simulator(sim_config(speed=1.0)) as realtime:
        out = tmp_path / "recent.csv"
        now = datetime.now(UTC)
        result = await download_klines(
            settings_for(realtime, download_rate=100),
            "ETHUSDT",
            "1",
            now - timedelta(minutes=30),
            now + timedelta(hours=1),
            out,
            progress=False,
            clock=LiveClock(),
        )
    last = parse_time(rows(out)[-1]["timestamp"])
    assert last + timedelta(minutes=1) <= datetime.now(UTC)
    assert 29 <= result.written <= 31


async def test_files_that_are_not_this_download_are_refused(sim: Simulator, tmp_path: Path) -> None:
    settings = settings_for(sim, download_rate=100)
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("date,price\n2024-01-01,1\n")
    with pytest.raises(InputError, match=r"foreign\.csv:1: not a bars CSV"):
        await download_klines(
            settings,
            "BTCUSDT",
            "60",
            START,
            START + timedelta(days=1),
            foreign,
            progress=False,
            clock=LiveClock(),
        )
    hourly = tmp_path / "hourly.csv"
    await download_klines(
        settings,
        "BTCUSDT",
        "60",
        START,
        START + timedelta(days=1),
        hourly,
        progress=False,
        clock=LiveClock(),
    )
    with pytest.raises(InputError, match="another interval"):
        await download_klines(
            settings,
            "BTCUSDT",
            "15",
            START,
            START + timedelta(days=2),
            hourly,
            progress=False,
            clock=LiveClock(),
        )
    with pytest.raises(UserError, match="cannot be extended backwards"):
        await download_klines(
            settings,
            "BTCUSDT",
            "60",
            START - timedelta(days=1),
            START + timedelta(days=2),
            hourly,
            progress=False,
            clock=LiveClock(),
        )
    with pytest.raises(UserError, match="must be after"):
        await download_klines(
            settings, "BTCUSDT", "60", START, START, hourly, progress=False, clock=LiveClock()
        )


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_download_data_command(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[bybit]\nrest_url = "{sim.url}"\ndownload_rate = 100\n')
    out = tmp_path / "bars.csv"
    code, stdout, stderr = await run_cli(
        "download-data",
        "--config",
        str(config),
        "--symbol",
        "ETHUSDT",
        "--interval",
        "1h",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-02",
        "--out",
        str(out),
    )
    assert code == 0, stderr
    assert stdout.strip() == (
        f"{out}\t48 bars written\t2024-01-01T00:00:00Z .. 2024-01-02T23:00:00Z"
    )
    assert len(rows(out)) == 48
    code, stdout, stderr = await run_cli(
        "download-data",
        "--config",
        str(config),
        "--symbol",
        "ETHUSDT",
        "--interval",
        "7",
        "--from",
        "2024-01-01",
    )
    assert code == 2 and "unknown kline interval '7'" in stderr and stdout == ""
    code, _, stderr = await run_cli(
        "download-data",
        "--config",
        str(config),
        "--symbol",
        "NOPEUSDT",
        "--from",
        "2024-01-01",
        "--to",
        "2024-01-01",
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert code == 1 and stderr.count("\n") == 1 and "NOPEUSDT" in stderr


async def test_exchange_sim_command_serves_bybit_on_one_port(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "exchange-sim",
        "--port",
        "0",
        "--speed",
        "60",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    logs = asyncio.create_task(process.stderr.read())  # drained, so its logs never block it
    try:
        first = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert first.startswith("Bybit v5 simulator on http://127.0.0.1:")
        url = first.split(" on ")[1].strip()
        from bot.config import Settings

        async with BybitRest(
            Settings().bybit, url, LiveClock(), api_key="sim-key", api_secret="sim-secret"
        ) as rest:
            wallet = await rest.wallet()
            assert wallet.balance("USDT") == D("100000")
            assert abs(await rest.sync_clock(force=True)) < 1000
    finally:
        process.send_signal(2)  # Ctrl-C
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()
    stderr = (await logs).decode(errors="replace")
    assert process.returncode == 0, f"exchange-sim did not stop on Ctrl-C: {stderr[-2000:]}"
    assert "exchange-sim: stopped" in stderr
