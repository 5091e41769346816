"""Loading model folders: the direct LoRA merge equals peft's forward; bad folders fail clearly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from adapters.model.loading import ModelLoadError, load_model, lora_rank
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
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")  # type: ignore[operator]
    with torch.no_grad():
        return model(**batch).logits.softmax(-1)


def test_direct_merge_matches_peft_forward(encoder_adapter: Path) -> None:
    loaded = load_model(encoder_adapter)
    assert loaded.merged
    assert "peft" not in type(loaded.model).__module__
    reference = _peft_probs(encoder_adapter, HEADLINES)
    got = _probs(loaded.model, loaded.tokenizer, HEADLINES)
    assert torch.allclose(got, reference, atol=1e-5)
    # the adapter matters: the merged weights are not the base's
    base = _probs(builders.encoder_base().eval(), loaded.tokenizer, HEADLINES)
    assert not torch.allclose(got[:, :], base, atol=1e-3)


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
