"""Purging and the embargo remove exactly the items that straddle the split."""

from __future__ import annotations

import numpy as np
import pytest

from training.impact.split import parse_step, split_at, walk_forward

H = 3_600
S = 1_648_771_200  # 2022-04-01T00:00:00Z


def test_purge_and_embargo_remove_exactly_the_straddling_items() -> None:
    received = S + H * np.array([-10, -5, -4, -3, -1, 0, 2, 3, 4, 5, 9])
    window_end = received + 4 * H + 1_800  # entry half an hour later, horizon 4h
    fold = split_at(received, window_end, S, embargo=4 * H)
    # train: whole window ended by S (received <= S - 4.5h)
    assert fold.train.tolist() == [0, 1]
    assert fold.purged == 3  # -4, -3, -1: their labels hold prices after S
    assert fold.embargoed == 3  # 0, 2, 3: inside [S, S + 4h)
    assert fold.test.tolist() == [8, 9, 10]
    assert fold.describe()["train_before"] == "2022-04-01T00:00:00Z"
    assert fold.describe()["test_from"] == "2022-04-01T04:00:00Z"


def test_walk_forward_scores_every_month_out_of_sample() -> None:
    day = 24 * H
    received = S - 60 * day + day * np.arange(150, dtype=np.int64)
    folds = walk_forward(received, received + 4 * H, S, "1M", 4 * H)
    assert [f.name for f in folds] == ["2022-04-01", "2022-05-01", "2022-06-01"]  # to 06-29
    for fold in folds:
        assert received[fold.train].max() + 4 * H <= fold.split
        assert received[fold.test].min() >= fold.split + 4 * H
        if fold.test_end is not None:
            assert received[fold.test].max() < fold.test_end
    tested = np.concatenate([f.test for f in folds])
    assert np.unique(tested).size == tested.size  # no item scored twice
    assert fold.train.size > folds[0].train.size  # each month trains on everything before


def test_step_spellings() -> None:
    assert parse_step("1M") == (1, 0)
    assert parse_step("2w") == (0, 14 * 24 * H)
    with pytest.raises(ValueError, match="expected months"):
        parse_step("monthly")
