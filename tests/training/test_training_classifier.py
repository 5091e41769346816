"""The loading API the serving layer shares: the shipped default works out of the box, answers are
always three probabilities in the project order, and a wrong folder is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bot.errors import UserError
from bot.events import Label
from bot.manifest import DEFAULT_BASE_HUB_ID, default_model_dir, read_manifest
from training.classifier import load_model


def test_shipped_default_adapter_reads_clear_headlines() -> None:
    folder = default_model_dir()
    manifest = read_manifest(folder)
    assert manifest.base_model == DEFAULT_BASE_HUB_ID  # portable: no machine path
    assert manifest.family == "encoder" and manifest.method == "lora"
    assert manifest.eval["accuracy"] >= 0.86 and manifest.eval["macro_f1"] >= 0.80
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["base_model_name_or_path"] == DEFAULT_BASE_HUB_ID
    scores = json.loads((folder / "eval.json").read_text())
    assert scores["accuracy"] == pytest.approx(manifest.eval["accuracy"], abs=1e-4)

    model = load_model()
    texts = [
        "Acme beats estimates and raises full-year guidance; shares jump 12%",
        "Globex cuts outlook, misses revenue estimates; stock plunges",
        "Initech to hold its annual shareholder meeting on May 3",
    ]
    predictions = model.predict(texts)
    assert [p.label for p in predictions] == [Label.BULLISH, Label.BEARISH, Label.NEUTRAL]
    for prediction in predictions:
        assert sum(prediction.probs) == pytest.approx(1.0)
        assert prediction.confidence == max(prediction.probs)
        assert prediction.model_id.startswith("lora:")
    probs = model.predict_proba(texts)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1.0)
    assert model.predict_proba([]).shape == (0, 3)


def test_folder_without_manifest_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"no lorabot\.json"):
        load_model(tmp_path)
    (tmp_path / "lorabot.json").write_text('{"family": "encoder"}', encoding="utf-8")
    with pytest.raises(UserError, match="invalid manifest"):
        load_model(tmp_path)
