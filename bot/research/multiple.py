"""Correction for testing many groups and horizons at once.

An analysis tests every label, confidence bucket, source and horizon; at the 5% level one test in
twenty is "significant" by chance. Holm's step-down correction controls the family-wise error
rate without assuming the tests are independent, and is uniformly more powerful than Bonferroni.
"""

from __future__ import annotations

import numpy as np


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values, in the input's order; NaNs stay NaN and do not count as tests."""
    values = np.asarray(p_values, dtype=float)
    adjusted = np.full(values.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(values))
    m = finite.size
    if m == 0:
        return adjusted
    order = finite[np.argsort(values[finite], kind="stable")]
    scaled = values[order] * (m - np.arange(m))
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted
