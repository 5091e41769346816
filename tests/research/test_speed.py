"""The event study at the issue's size stays well inside the `lorabot analyze` budget."""

from __future__ import annotations

import time

import pytest

from bot.research.event_study import StudyOptions, analyze
from tests.research.synthetic import synthetic


@pytest.mark.slow
def test_event_study_at_full_size_is_under_five_seconds() -> None:
    data = synthetic(n_bars=6_800, n_signals=7_500)
    options = StudyOptions(horizons=("1h", "4h", "1d"), draws=1_000)
    best = float("inf")
    for _ in range(2):
        started = time.perf_counter()
        document = analyze(data.signals, {"BTCUSDT": data.bars}, options)
        best = min(best, time.perf_counter() - started)
    assert document["counts"]["studied"] == 7_500
    assert best < 5.0, f"event study took {best:.2f} s"
