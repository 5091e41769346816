"""A fresh simulator per test, on a free loopback port, with market time at 60x."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adapters.bybit.sim import Simulator

from .harness import sim_config


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    simulator = Simulator(sim_config())
    await simulator.start()
    try:
        yield simulator
    finally:
        await simulator.stop()
