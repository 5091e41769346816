"""`lorabot news --once` and `--record` include Bybit's announcements (read from the simulator)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from adapters.bybit.sim import Simulator

ROOT = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, sim: Simulator) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        "\n".join(
            [
                "[news]",
                "feeds = []",
                f'store_url = "sqlite:///{tmp_path / "news.sqlite"}"',
                "[bybit]",
                f'rest_url = "{sim.url}"',
                'rest_timeout = "2s"',
                "[model]",
                'backend = "lexicon"',
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


async def _news(*args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "news",
        *args,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.mark.slow
async def test_news_once_and_record_include_the_announcements(
    sim: Simulator, tmp_path: Path
) -> None:
    now = sim.now_ms()
    sim.announcements.add("Bybit will delist ABCUSDT perpetual", "delistings", publish_ms=now - 2)
    sim.announcements.add("New Listing: BTCUSDT Perpetual Contract", publish_ms=now - 1)
    sim.announcements.add("", publish_ms=now - 3)  # malformed: named on stderr, the rest kept
    config = str(_config(tmp_path, sim))

    code, out, err = await _news("--once", "--config", config)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 2 and all("bybit-announcements" in line for line in lines)
    assert "ABCUSDT" in lines[0] and "BTCUSDT" in lines[1]
    assert "/v5/announcements/index: skipped 1 invalid entry (page 1 item 3: title is empty)" in err

    record = tmp_path / "history.jsonl"
    code, _, err = await _news("--once", "--record", str(record), "--config", config)
    assert code == 0, err
    written = [json.loads(line) for line in record.read_text().splitlines()]
    assert [item["symbols"] for item in written] == [["ABCUSDT"], ["BTCUSDT"]]
    assert {item["source"] for item in written} == {"bybit-announcements"}

    code, out, err = await _news("--once", "--record", str(record), "--config", config)
    assert code == 0 and out == "" and "2 seen by an earlier run" in err
