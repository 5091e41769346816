"""Properties that must hold for any input: Holm's correction and the stationary bootstrap."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.research.bootstrap import stationary_weights
from bot.research.multiple import holm

p_values = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=40)


@given(p_values)
@settings(max_examples=200, deadline=None)
def test_holm_never_lowers_a_p_value_keeps_the_order_and_stays_below_one(
    values: list[float],
) -> None:
    raw = np.array(values)
    adjusted = holm(raw)
    assert np.all(adjusted >= raw - 1e-15)
    assert np.all(adjusted <= 1.0)
    order = np.argsort(raw, kind="stable")
    assert np.all(np.diff(adjusted[order]) >= -1e-15)
    # Holm is never more conservative than Bonferroni.
    assert np.all(adjusted <= np.minimum(raw * raw.size, 1.0) + 1e-15)


@given(st.integers(1, 60), st.integers(1, 30), st.floats(1.0, 20.0), st.integers(0, 2**31))
@settings(max_examples=100, deadline=None)
def test_every_draw_has_as_many_units_as_the_series(
    n: int, draws: int, block: float, seed: int
) -> None:
    weights = stationary_weights(n, draws, block, np.random.default_rng(seed))
    assert weights.shape == (draws, n)
    assert np.all(weights.sum(axis=1) == n)
    assert np.all(weights >= 0)
