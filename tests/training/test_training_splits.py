"""Splits never leak a text across sides, respect time when there is time, and class weights
counter imbalance."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.events import Label
from training.data import DataError, Example, load_examples
from training.splits import class_weights, make_split, normalise, split_examples

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"


def _examples(n: int, *, stamped: bool = False) -> list[Example]:
    start = datetime(2024, 1, 1, tzinfo=UTC)
    labels = [Label.NEUTRAL] * 6 + [Label.BULLISH] * 2 + [Label.BEARISH] * 2
    return [
        Example(
            f"headline number {i}",
            labels[i % len(labels)],
            start + timedelta(hours=i) if stamped else None,
        )
        for i in range(n)
    ]


def test_stratified_split_is_seeded_and_keeps_class_shares() -> None:
    examples = _examples(200)
    kept, held, strategy = split_examples(examples, 0.2, seed=3)
    assert strategy == "stratified"
    assert len(held) == 40 and len(kept) == 160
    assert Counter(e.label for e in held) == {Label.NEUTRAL: 24, Label.BULLISH: 8, Label.BEARISH: 8}
    again = split_examples(examples, 0.2, seed=3)
    assert [e.text for e in again[1]] == [e.text for e in held]
    other = split_examples(examples, 0.2, seed=4)
    assert {e.text for e in other[1]} != {e.text for e in held}


def test_duplicates_never_straddle_the_split() -> None:
    base = _examples(60)
    duplicates = [Example(e.text.upper() + "  ", e.label) for e in base[:30]] + [
        Example("  " + e.text, e.label) for e in base[:10]
    ]
    kept, held, _ = split_examples(base + duplicates, 0.25, seed=0)
    assert not {normalise(e.text) for e in kept} & {normalise(e.text) for e in held}
    assert len(kept) + len(held) == 100


def test_temporal_split_holds_out_the_newest() -> None:
    examples = _examples(50, stamped=True)
    kept, held, strategy = split_examples(examples, 0.2, seed=0)
    assert strategy == "temporal"
    assert len(held) == 10
    assert max(e.timestamp for e in kept) < min(e.timestamp for e in held)  # type: ignore[type-var]
    from_file = load_examples(FIXTURES / "news_timestamped.csv")
    kept, held, strategy = split_examples(from_file, 0.1, seed=0)
    assert strategy == "temporal"
    assert max(e.timestamp for e in kept) < min(e.timestamp for e in held)  # type: ignore[type-var]


def test_given_test_set_removes_its_texts_from_training() -> None:
    examples = _examples(40)
    test = [Example(examples[0].text.lower(), examples[0].label), examples[1]]
    split = make_split(examples, test=test, valid_fraction=0.2, seed=1)
    assert split.dropped_overlap == 2
    texts = {normalise(e.text) for e in split.train + split.valid}
    assert not texts & {normalise(e.text) for e in test}
    assert split.test == test


def test_too_little_data_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="two distinct texts"):
        split_examples([Example("a", Label.BULLISH), Example("A ", Label.BULLISH)], 0.5, 0)
    with pytest.raises(DataError, match="no training rows left"):
        make_split([Example("a", Label.BULLISH)], test=[Example("a", Label.BULLISH)])


def test_class_weights() -> None:
    examples = _examples(100)  # 60 neutral, 20 bullish, 20 bearish
    assert class_weights(examples, "none") is None
    balanced = class_weights(examples, "balanced")
    sqrt = class_weights(examples, "sqrt")
    assert balanced is not None and sqrt is not None
    counts = [20, 60, 20]
    for weights in (balanced, sqrt):
        mean = sum(w * c for w, c in zip(weights, counts, strict=True)) / 100
        assert mean == pytest.approx(1.0)
        assert weights[0] == pytest.approx(weights[2])
        assert weights[0] > weights[1]
    assert balanced[0] / balanced[1] == pytest.approx(3.0)
    assert sqrt[0] / sqrt[1] == pytest.approx(3.0**0.5)
