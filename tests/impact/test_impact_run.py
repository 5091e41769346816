"""One `--task impact` run: three models on one purged split, their folders and the report."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Settings, TrainingConfig
from bot.manifest import read_manifest
from training.impact.cli import ImpactRequest, run
from training.impact.heads import HeadSettings

from .files import write_momentum_files

SPLIT = datetime(2022, 3, 10, tzinfo=UTC)


@pytest.mark.slow
def test_numbers_carry_the_signal_the_text_does_not(
    tmp_path: Path, tiny_bert: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    news, bars, _ = write_momentum_files(tmp_path)
    out = tmp_path / "out"
    cfg = tiny_config(base=str(tiny_bert), method="lora", epochs=2, patience=0)
    request = ImpactRequest(
        news=news, bars={"BTCUSDT": bars}, out=out, horizon="4h", split_date=SPLIT
    )
    lines: list[str] = []
    document = run(Settings(), cfg, request, head=HeadSettings(epochs=80), echo=lines.append)
    models = document["models"]
    assert set(models) == {"text", "numbers", "fusion"}
    for name in ("numbers", "fusion"):
        assert models[name]["accuracy"] >= 0.8, (name, models)
        assert models[name]["ic_ci_low"] > 0, (name, models)
    assert models["text"]["accuracy"] < 0.6, models
    assert models["text"]["macro_f1"] < models["numbers"]["macro_f1"] - 0.3
    n_test = models["numbers"]["n_test"]
    assert n_test == models["text"]["n_test"] == models["fusion"]["n_test"] > 20
    fold = document["split"]["folds"][0]
    assert fold["train_before"] == "2022-03-10T00:00:00Z"
    assert fold["test_from"] == "2022-03-10T04:00:00Z"  # the embargo is the horizon
    assert document["embargo"] == "4h" and document["horizon"] == "4h"
    assert sum(document["label_counts"]["test"].values()) == n_test
    # the event study of the predictions: up calls are followed by the +3% move, down by -3%
    up, down = document["edge"]["numbers"]["up"], document["edge"]["numbers"]["down"]
    assert up["ci_low_bps"] > 100 and down["ci_high_bps"] < -100, document["edge"]
    assert up["n"] + down["n"] + document["edge"]["numbers"]["flat"]["n"] == n_test
    # three model folders and the report
    span = read_manifest(out / "text").data["span"]  # a backtest's training-overlap check
    assert span["start"] < span["end"] <= "2022-03-10T00:00:00Z"
    for kind in ("numbers", "fusion"):
        manifest = json.loads((out / kind / "impact.json").read_text())
        assert manifest["kind"] == kind and manifest["symbol"] == "BTCUSDT"
        assert manifest["eval"] == models[kind]
    assert (out / "fusion" / "encoder" / "lorabot.json").is_file()
    saved = json.loads((out / "impact_report.json").read_text())
    assert saved["models"] == models
    assert "| numbers |" in (out / "impact_report.md").read_text()


@pytest.mark.slow
def test_walk_forward_scores_every_month_out_of_sample(tmp_path: Path) -> None:
    news, bars, _ = write_momentum_files(tmp_path)
    request = ImpactRequest(
        news=news,
        bars={"BTCUSDT": bars},
        out=tmp_path / "out",
        split_date=datetime(2022, 2, 15, tzinfo=UTC),
        walk_forward="1M",
        models=("numbers",),
    )
    document = run(Settings(), Settings().training, request, head=HeadSettings(epochs=40))
    folds = document["split"]["folds"]
    assert document["split"]["kind"] == "walk-forward 1M"
    assert [f["name"] for f in folds] == ["2022-02-15", "2022-03-15"]
    assert folds[0]["test_to"] == folds[1]["train_before"] == "2022-03-15T00:00:00Z"
    assert folds[1]["n_train"] > folds[0]["n_train"] + folds[0]["n_test"] - 5
    n_test = document["models"]["numbers"]["n_test"]
    assert n_test == sum(f["n_test"] for f in folds)
    assert document["models"]["numbers"]["accuracy"] > 0.8
    # the saved model is the last fold's
    manifest = json.loads((tmp_path / "out" / "numbers" / "impact.json").read_text())
    assert manifest["split"]["name"] == "2022-03-15"
