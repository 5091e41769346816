"""`lorabot export` writes what the serving layer loads: a merged encoder as a standard Hugging
Face classifier folder (what vLLM's /classify serves), a decoder LoRA adapter as a plain PEFT
folder (what vLLM's --lora-modules loads), and a clear refusal for what vLLM cannot serve."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from bot.config import TrainingConfig
from bot.errors import UserError
from bot.manifest import read_manifest
from training.classifier import load_model
from training.data import load_examples
from training.export import export_model
from training.pipeline import DataRequest, train_model


@pytest.fixture
def texts(news_csv: Path) -> list[str]:
    return [e.text for e in load_examples(news_csv)][:16]


def _train(
    tiny_config: Callable[..., TrainingConfig],
    base: Path,
    method: str,
    news_csv: Path,
    out: Path,
    **extra: object,
) -> Path:
    cfg = tiny_config(base=str(base), method=method, epochs=1, learning_rate=1e-2, **extra)
    train_model(cfg, DataRequest(str(news_csv)), out, progress=False)
    return out


def test_merged_encoder_is_a_plain_fp32_classifier(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    texts: list[str],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = _train(tiny_config, tiny_bert, "lora", news_csv, tmp_path / "lora")
    out = tmp_path / "merged"
    manifest = export_model(model_dir, out, merge=True)
    assert manifest.kind == "merged" and manifest.dtype == "float32"
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["BertForSequenceClassification"]
    assert config["id2label"] == {"0": "bearish", "1": "neutral", "2": "bullish"}
    assert config["label2id"] == {"bearish": 0, "neutral": 1, "bullish": 2}
    assert "quantization_config" not in config
    assert config.get("_attn_implementation") in (None, "sdpa", "eager")
    assert (out / "tokenizer.json").is_file() and (out / "tokenizer_config.json").is_file()
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
        assert all(weights.get_tensor(k).dtype.is_floating_point for k in keys[:5])
        assert {str(weights.get_tensor(k).dtype) for k in keys} == {"torch.float32"}
        assert not any("lora" in k for k in keys)
    assert read_manifest(out).kind == "merged"

    # Plain transformers (what a server runs) gives what the adapter gave.
    import torch

    tokenizer = AutoTokenizer.from_pretrained(str(out))
    plain = AutoModelForSequenceClassification.from_pretrained(str(out)).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")
        probs = torch.softmax(plain(**batch).logits, dim=-1).numpy()
    adapter = load_model(model_dir)
    # plain transformers has no temperature: the weights agree, the manifest carries the rest
    assert np.allclose(probs, adapter.predict_proba(texts, calibrated=False), atol=1e-5)
    assert np.allclose(load_model(out).predict_proba(texts, calibrated=False), probs, atol=1e-5)
    assert read_manifest(out).temperature == read_manifest(model_dir).temperature != 1.0


def test_qlora_merges_into_the_weights_it_was_trained_on(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    texts: list[str],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    model_dir = _train(tiny_config, tiny_bert, "qlora", news_csv, tmp_path / "qlora")
    out = tmp_path / "merged"
    manifest = export_model(model_dir, out, merge=True)
    assert manifest.quantization is None and manifest.method == "qlora"
    merged = load_model(out).predict_proba(texts)
    four_bit = load_model(model_dir).predict_proba(texts)
    # bf16 compute in the 4-bit model, fp32 in the merged one: close, same answers.
    assert np.abs(merged - four_bit).max() < 0.02
    assert (merged.argmax(1) == four_bit.argmax(1)).mean() >= 0.9


def test_decoder_lora_exports_a_vllm_adapter(
    tiny_llama: Path,
    news_csv: Path,
    tmp_path: Path,
    texts: list[str],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    model_dir = _train(tiny_config, tiny_llama, "lora", news_csv, tmp_path / "lora")
    out = tmp_path / "adapter"
    # a one-epoch tiny decoder may answer one class only (export refuses that by default);
    # what this test checks is the folder's format
    manifest = export_model(model_dir, out, force=True)
    assert manifest.kind == "adapter" and manifest.family == "decoder"
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        "eval.json",
        "lorabot.json",
    ]
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert not config.get("modules_to_save")
    assert set(config["target_modules"]) <= {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert config["base_model_name_or_path"] == str(tiny_llama)
    with safe_open(str(out / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    assert keys and all(".lora_A." in k or ".lora_B." in k for k in keys)
    assert not any("embed" in k or "lm_head" in k for k in keys)
    exported = read_manifest(out)
    assert exported.label_words == ("negative", "neutral", "positive")
    assert exported.prompt and "{text}" in exported.prompt
    assert exported.label_token_ids is not None and len(set(exported.label_token_ids)) == 3
    assert np.allclose(
        load_model(out).predict_proba(texts), load_model(model_dir).predict_proba(texts), atol=1e-6
    )


def test_what_vllm_cannot_serve_is_refused_with_the_way_out(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    texts: list[str],
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    lora = _train(tiny_config, tiny_bert, "lora", news_csv, tmp_path / "lora")
    said: list[str] = []
    merged = export_model(lora, tmp_path / "x", echo=said.append)  # an encoder: merged, saying so
    assert merged.kind == "merged" and (tmp_path / "x" / "config.json").is_file()
    assert len(said) == 1 and "merged into its base" in said[0]
    for method in ("prefix", "prompt", "adapter"):
        model_dir = _train(tiny_config, tiny_bert, method, news_csv, tmp_path / method)
        for merge in (False, True):
            with pytest.raises(UserError, match="runs on the embedded backend"):
                export_model(model_dir, tmp_path / f"{method}-{merge}", merge=merge)
        out = tmp_path / f"{method}-embedded"
        export_model(model_dir, out, target="embedded")
        assert np.allclose(
            load_model(out).predict_proba(texts),
            load_model(model_dir).predict_proba(texts),
            atol=1e-6,
        )


def test_export_guards_its_output(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    model_dir = _train(tiny_config, tiny_bert, "full", news_csv, tmp_path / "full")
    out = tmp_path / "export"
    # a one-epoch tiny model may answer one class only: forced, as the guards are what is tested
    manifest = export_model(model_dir, out, dtype="float16", force=True)
    assert manifest.kind == "full" and manifest.dtype == "float16"
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert str(weights.get_tensor(next(iter(weights.keys()))).dtype) == "torch.float16"
    with pytest.raises(UserError, match="not empty; pass --overwrite"):
        export_model(model_dir, out, force=True)
    export_model(model_dir, out, overwrite=True, force=True)
    with pytest.raises(UserError, match="another folder"):
        export_model(model_dir, model_dir, force=True)


def test_export_as_the_readme_writes_it_merges_an_encoder(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`lorabot export --model runs/lora --out exported/lora`, no --merge, for an encoder."""
    from click.testing import CliRunner

    from bot.cli import cli

    _train(tiny_config, tiny_bert, "lora", news_csv, tmp_path / "runs" / "lora")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["export", "--model", "runs/lora", "--out", "exported/lora"])
    assert result.exit_code == 0, result.output
    assert "merged into its base (as with --merge" in result.stderr
    assert result.stdout.strip() == "exported merged encoder (lora) to exported/lora"
    assert read_manifest(tmp_path / "exported" / "lora").kind == "merged"


def test_a_model_that_predicts_one_class_warns_and_needs_force_to_export(
    tiny_bert: Path, tmp_path: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    data = tmp_path / "bullish.csv"
    rows = [f"Shares of company {i} jumped after strong quarterly results" for i in range(24)]
    data.write_text("text,label\n" + "".join(f"{r},bullish\n" for r in rows), encoding="utf-8")
    said: list[str] = []
    cfg = tiny_config(base=str(tiny_bert), method="lora", epochs=1)
    train_model(cfg, DataRequest(str(data)), tmp_path / "m", progress=False, echo=said.append)
    warnings = [line for line in said if line.startswith("warning:")]
    assert warnings[0].startswith(
        "warning: the training data has no bearish and no neutral example (bearish 0, neutral 0, "
    )
    assert warnings[1].startswith("warning: the trained model predicts only bullish on validation")
    assert read_manifest(tmp_path / "m").eval["valid_predicted"] == "bullish"
    with pytest.raises(UserError, match=r"predicted only bullish on validation.*--force"):
        export_model(tmp_path / "m", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    exported = export_model(tmp_path / "m", tmp_path / "out", force=True)
    assert exported.kind == "merged"


def test_predicted_labels_reads_the_confusion_matrix() -> None:
    from training.metrics import predicted_labels

    one = {"confusion_matrix": [[0, 3, 0], [0, 5, 0], [0, 2, 0]]}
    assert predicted_labels(one) == ("neutral",)
    two = {"confusion_matrix": [[1, 3, 0], [0, 5, 0], [0, 2, 0]]}
    assert predicted_labels(two) == ("bearish", "neutral")
