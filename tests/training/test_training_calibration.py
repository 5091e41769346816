"""The calibration temperature: fitted on validation, never changing an answer, measured by ECE."""

from __future__ import annotations

import numpy as np
import pytest

from bot.manifest import temper as temper_one
from training.calibration import ece, fit_temperature, reliability, temper


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_temper_is_softmax_of_logits_over_t_and_keeps_the_argmax() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3)) * 3
    probs = _softmax(logits)
    for t in (0.5, 2.0, 7.0):
        assert np.allclose(temper(probs, t), _softmax(logits / t), atol=1e-12)
        assert (temper(probs, t).argmax(axis=1) == probs.argmax(axis=1)).all()
        assert temper_one(list(probs[3]), t) == pytest.approx(list(_softmax(logits / t)[3]))
    assert temper(probs, 1.0) is probs
    assert temper_one([0.2, 0.3, 0.5], 1.0) == [0.2, 0.3, 0.5]  # exactly as before


def test_fit_recovers_the_overconfidence_it_was_given() -> None:
    """Labels drawn from softmax(z); the model reports softmax(3z): T must come out near 3."""
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(20000, 3)) * 1.5
    truth = _softmax(logits)
    labels = [int(rng.choice(3, p=row)) for row in truth]
    overconfident = _softmax(3 * logits)
    fitted = fit_temperature(labels, overconfident)
    assert fitted == pytest.approx(3.0, rel=0.05)
    assert ece(labels, temper(overconfident, fitted)) < ece(labels, overconfident) / 3


def test_ece_by_hand() -> None:
    # two rows at 0.9 (one right): gap 0.4; two at 0.6 (both right): gap 0.4 -> ECE 0.4
    probs = np.array([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.2, 0.6, 0.2], [0.2, 0.6, 0.2]])
    labels = [0, 1, 1, 1]
    assert ece(labels, probs) == pytest.approx(0.4)
    bins = {row["low"]: row for row in reliability(labels, probs) if row["n"]}
    assert bins[0.8] == {"low": 0.8, "high": 0.9, "n": 2, "confidence": 0.9, "accuracy": 0.5}
    assert bins[0.5]["accuracy"] == 1.0 and bins[0.5]["n"] == 2
    assert ece([], np.zeros((0, 3))) == 0.0
