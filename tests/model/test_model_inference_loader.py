"""Loading model folders: the direct LoRA merge equals peft's forward; bad folders fail clearly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from adapters.model.inference import _padded
from adapters.model.inference_loader import ModelLoadError, load_model, lora_rank
from tests.model import builders
from tests.model.conftest import HEADLINES


def _peft_probs(adapter: Path, texts: list[str]) -> torch.Tensor:
    from peft import PeftModel
    from transformers import AutoTokenizer

    from bot.manifest import embedded_base_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_base_path()))
    model = PeftModel.from_pretrained(builders.encoder_base(), str(adapter)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.softmax(-1)


def _probs(model: torch.nn.Module, tokenizer: object, texts: list[str]) -> torch.Tensor:
    """Every loaded model is called the way the embedded scorer calls it: ids and mask."""
    ids = tokenizer(texts, truncation=True, max_length=64)["input_ids"]  # type: ignore[operator]
    input_ids, mask = _padded(ids, int(tokenizer.pad_token_id or 0))  # type: ignore[attr-defined]
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=mask).logits.softmax(-1)


def test_direct_merge_matches_peft_forward(encoder_adapter: Path) -> None:
    loaded = load_model(encoder_adapter)
    assert loaded.merged
    assert type(loaded.model).__module__ == "adapters.model.compact_bert"  # no transformers
    reference = _peft_probs(encoder_adapter, HEADLINES)
    got = _probs(loaded.model, loaded.tokenizer, HEADLINES)
    assert torch.allclose(got, reference, atol=1e-5)
    # the adapter matters: the merged weights are not the base's
    base = _probs(builders.encoder_base().eval(), loaded.tokenizer, HEADLINES)
    assert not torch.allclose(got[:, :], base, atol=1e-3)
    # and through transformers, the same folder gives the same answers
    through_transformers = load_model(encoder_adapter, compact=False)
    assert "transformers" in type(through_transformers.model).__module__
    assert torch.allclose(
        _probs(through_transformers.model, through_transformers.tokenizer, HEADLINES),
        got,
        atol=1e-5,
    )


def test_compact_tokenizer_equals_the_transformers_one(encoder_adapter: Path) -> None:
    compact = load_model(encoder_adapter).tokenizer
    reference = load_model(encoder_adapter, compact=False).tokenizer
    texts = [*HEADLINES, "", "Ünïcödé  café — ¥1,000 <b>HTML</b> ＢＴＣ", "long " * 200]
    for limit in (8, 64):
        got = compact(texts, truncation=True, max_length=limit)["input_ids"]
        assert got == reference(texts, truncation=True, max_length=limit)["input_ids"]
    assert compact(texts[0])["input_ids"] == reference(texts[0])["input_ids"]
    assert compact.pad_token_id == reference.pad_token_id


def test_the_shipped_default_starts_without_importing_transformers() -> None:
    """Why `compact_bert` exists: a cold start without transformers' import (seconds)."""
    script = (
        "import sys\n"
        "from adapters.model.inference_loader import load_model\n"
        "from bot.manifest import default_model_dir\n"
        "loaded = load_model(default_model_dir())\n"
        "print(type(loaded.model).__module__, 'transformers' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == ["adapters.model.compact_bert", "False"]


def test_unmerged_loading_goes_through_peft(encoder_adapter: Path) -> None:
    loaded = load_model(encoder_adapter, merge=False)
    assert not loaded.merged
    assert "peft" in type(loaded.model).__module__
    got = _probs(loaded.model, loaded.tokenizer, HEADLINES)
    assert torch.allclose(got, _peft_probs(encoder_adapter, HEADLINES), atol=1e-6)


def test_adapter_outside_the_direct_merge_falls_back_to_peft(
    encoder_adapter: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "pattern"
    shutil.copytree(encoder_adapter, folder)
    config_path = folder / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["alpha_pattern"] = {"query": 16}  # per-module alpha: only peft applies it right
    config_path.write_text(json.dumps(config))
    loaded = load_model(folder)
    assert loaded.merged
    got = _probs(loaded.model, loaded.tokenizer, HEADLINES)
    assert torch.allclose(got, _peft_probs(folder, HEADLINES), atol=1e-5)
    assert not torch.allclose(got, _peft_probs(encoder_adapter, HEADLINES), atol=1e-5)


def test_merged_folder_loads_as_a_complete_model(
    encoder_merged: Path, encoder_adapter: Path
) -> None:
    loaded = load_model(encoder_merged)
    got = _probs(loaded.model, loaded.tokenizer, HEADLINES)
    assert torch.allclose(got, _peft_probs(encoder_adapter, HEADLINES), atol=1e-5)


def test_lora_rank_reads_the_adapter_config(encoder_adapter: Path, decoder_lora: Path) -> None:
    assert lora_rank(encoder_adapter) == 4
    assert lora_rank(decoder_lora) == 8


def test_missing_folder_and_manifest_are_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_model(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match=r"no lorabot\.json"):
        load_model(tmp_path / "empty")


def test_base_that_is_not_local_is_a_clear_error(encoder_adapter: Path, tmp_path: Path) -> None:
    folder = tmp_path / "remote-base"
    shutil.copytree(encoder_adapter, folder)
    manifest = json.loads((folder / "lorabot.json").read_text())
    manifest["base_model"] = "someone/not-downloaded-model"
    (folder / "lorabot.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelLoadError, match=r"not a local folder.*\[model\] base"):
        load_model(folder)
