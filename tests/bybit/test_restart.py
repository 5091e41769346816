"""A trading process is SIGKILLed with orders resting; they fill while it is down; a new process
reconciles from the store to the venue's position and cash. Real processes, real sockets."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from decimal import Decimal as D
from pathlib import Path

from adapters.bybit.sim import Simulator
from bot.store import Store

from .harness import venue_exec_ids, venue_position, wait_until

ROOT = Path(__file__).resolve().parents[2]


async def spawn(
    mode: str, sim: Simulator, store_url: str, *extra: str
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.bybit.restart_child",
        mode,
        sim.url,
        store_url,
        *extra,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


def sim_status(sim: Simulator, link_id: str) -> str:
    return next(o.status for o in sim.account.orders.values() if o.link_id == link_id)


async def test_killed_process_restarts_and_reconciles_to_the_venue(
    sim: Simulator, tmp_path: Path
) -> None:
    store_url = f"sqlite:///{tmp_path / 'live.sqlite'}"
    market = sim.market.get("linear", "BTCUSDT")
    assert market is not None
    bid, _ = market.quotes(sim.market.now_ms())

    first = await spawn("place", sim, store_url, str(bid))
    assert first.stdout is not None and first.stderr is not None
    logs = asyncio.create_task(first.stderr.read())  # drained, so the child never blocks
    try:
        line = await asyncio.wait_for(first.stdout.readline(), 30)
    except TimeoutError:
        line = b""
    if line.strip() != b"READY":
        first.kill()
        await first.wait()
        raise AssertionError(f"no READY ({line!r}): {(await logs).decode()[-3000:]}")
    first.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(first.wait(), 10) == -signal.SIGKILL
    await logs

    # While nobody is connected, both resting orders fill.
    sim.set_price("BTCUSDT", float(bid - 4000))
    await wait_until(lambda: sim_status(sim, "r-buy") == "Filled", 5, "the buy fills")
    sim.set_price("BTCUSDT", float(bid + 4000))
    await wait_until(lambda: sim_status(sim, "r-sell") == "Filled", 5, "the sell fills")

    second = await spawn("reconcile", sim, store_url)
    stdout, stderr = await asyncio.wait_for(second.communicate(), 60)
    assert second.returncode == 0, stderr.decode()[-3000:]
    report = json.loads(stdout.decode().strip().splitlines()[-1])

    assert report["errors"] == []
    assert sorted(report["known"]) == ["r-buy", "r-sell"]
    assert report["missed_fills"] == 2 and report["fills_before"] >= 1
    assert report["statuses"] == {"r-market": "filled", "r-buy": "filled", "r-sell": "filled"}
    assert report["exec_ids"] == sorted(venue_exec_ids(sim))  # nothing lost, nothing doubled
    assert D(report["position"]) == D("0.060") == venue_position(sim)
    assert D(report["venue_position"]) == D("0.060")
    assert abs(D(report["cash"]) - D(report["venue_cash"])) < D("0.000001")
    assert report["open_at_venue"] == []

    store = Store(store_url, account="live-restart")
    try:
        assert sorted(f.exec_id for f in store.fills()) == sorted(venue_exec_ids(sim))
    finally:
        store.close()
