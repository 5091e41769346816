"""`download-data` off a terminal (issue 13.8): no progress bar, but a progress log line every
`LOG_EVERY` pages, so a pipe, a cron job or a CI log sees how far a long download got. Against the
Bybit simulator's kline endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from adapters.bybit.download import LOG_EVERY, PAGE
from adapters.bybit.sim import Simulator
from adapters.bybit.sim.server import SimConfig

ROOT = Path(__file__).resolve().parents[2]
DAYS = 12  # of 1-minute bars: 17,280 bars, 18 pages


async def _download(tmp_path: Path, url: str, *extra: str) -> tuple[int, str, str]:
    config = tmp_path / "config.toml"
    config.write_text(f'[bybit]\nrest_url = "{url}"\ndownload_rate = 100\n[log]\nformat = "json"\n')
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "bot", "download-data", "--config", str(config)),
        *("--symbol", "BTCUSDT", "--interval", "1", "--from", "2024-01-01"),
        *("--to", f"2024-01-{DAYS:02d}", "--out", str(tmp_path / "bars.csv"), *extra),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_off_a_terminal_a_progress_line_comes_every_few_pages(tmp_path: Path) -> None:
    async with Simulator(SimConfig(port=0, speed=60.0)) as sim:
        code, out, err = await _download(tmp_path, sim.url)
        assert code == 0, err
        pages = -(-DAYS * 1440 // PAGE)
        lines = [json.loads(line) for line in err.splitlines()]
        assert [line["event"] for line in lines] == ["download progress"] * (pages // LOG_EVERY)
        assert [line["pages"] for line in lines] == list(range(LOG_EVERY, pages + 1, LOG_EVERY))
        assert [line["written"] for line in lines] == [
            line["pages"] * PAGE for line in lines
        ]  # whole pages of 1-minute bars
        assert lines[0]["through"] == "2024-01-04T11:19:00Z"  # 5,000 minutes in
        assert all(line["expected"] == DAYS * 1440 for line in lines)
        assert out.endswith(
            f"{DAYS * 1440} bars written\t2024-01-01T00:00:00Z .. 2024-01-12T23:59:00Z\n"
        )

        (tmp_path / "bars.csv").unlink()
        code, _, err = await _download(tmp_path, sim.url, "--no-progress")
        assert code == 0 and err.count("download progress") == pages // LOG_EVERY
