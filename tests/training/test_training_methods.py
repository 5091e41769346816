"""Every method on both families: the loss falls in a few steps, a saved model reloads with the
same probabilities, and the base weights are left exactly as they were (except under full
fine-tuning, which is the point of it). QLoRA runs with real 4-bit layers on the CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from bot.config import TrainingConfig
from bot.manifest import read_manifest
from training.classifier import load_model
from training.data import load_examples
from training.families import encode_texts
from training.pipeline import DataRequest, build_trainable, train_model
from training.trainer import Encoded, evaluate_rows

# (family, method, learning rate that moves a random tiny model within a dozen steps, extras)
CASES = [
    ("encoder", "lora", 2e-2, {}),
    ("encoder", "qlora", 2e-3, {}),
    ("encoder", "prefix", 1e-2, {}),
    ("encoder", "prefix", 1e-2, {"prefix_projection": True, "prefix_hidden": 16}),
    ("encoder", "prompt", 2e-2, {}),
    ("encoder", "adapter", 2e-2, {}),
    ("encoder", "full", 2e-3, {}),
    ("decoder", "lora", 1e-2, {}),
    ("decoder", "qlora", 1e-2, {}),
    ("decoder", "prefix", 1e-2, {}),
    ("decoder", "prompt", 1e-2, {}),
    ("decoder", "adapter", 1e-2, {}),
    ("decoder", "full", 1e-3, {}),
]


def _id(case: tuple[str, str, float, dict[str, object]]) -> str:
    family, method, _, extra = case
    return f"{family}-{method}" + ("-projection" if extra else "")


def _train_loss(
    cfg: TrainingConfig,
    model: torch.nn.Module,
    tokenizer: object,
    family: str,
    prompt: object,
    texts: list[str],
    labels: list[int],
) -> float:
    template = prompt.template if prompt else None  # type: ignore[attr-defined]
    rows = encode_texts(tokenizer, texts, family, cfg.max_length, template)  # type: ignore[arg-type]
    loss, _ = evaluate_rows(
        model,
        Encoded(rows, labels),
        family,  # type: ignore[arg-type]
        prompt.token_ids if prompt else None,  # type: ignore[attr-defined]
        int(tokenizer.pad_token_id or 0),  # type: ignore[attr-defined]
        32,
    )
    return loss


def _base_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The base model's own tensors, by their original names, wherever a method wrapped it."""
    from peft import PeftModel

    inner = model
    if isinstance(inner, PeftModel):
        inner = inner.get_base_model()
    inner = getattr(inner, "base", inner)
    state = {}
    for name, tensor in inner.state_dict().items():
        if "lora_" in name or "modules_to_save" in name or name.split(".")[0] in ("classifier",):
            continue
        state[name.replace(".base_layer", "").replace("original_module.", "")] = tensor
    return state


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_method_trains_saves_and_reloads(
    case: tuple[str, str, float, dict[str, object]],
    tiny_bert: Path,
    tiny_llama: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    family, method, lr, extra = case
    base_dir = tiny_bert if family == "encoder" else tiny_llama
    cfg = tiny_config(method=method, base=str(base_dir), learning_rate=lr, **extra)
    examples = load_examples(news_csv)
    texts = [e.text for e in examples]
    labels = [int(e.label) for e in examples]

    # The run builds its model from the same seed, so this is the loss it starts from.
    initial = build_trainable(cfg)
    tokenizer = initial.base.tokenizer
    before = _train_loss(cfg, initial.model, tokenizer, family, initial.prompt, texts, labels)
    untouched = {k: v.clone() for k, v in _base_state(initial.model).items()}
    del initial

    out = tmp_path / "model"
    outcome = train_model(cfg, DataRequest(str(news_csv)), out, progress=False)
    trained = outcome.classifier
    after = _train_loss(cfg, trained.model, tokenizer, family, trained.prompt, texts, labels)
    assert after < before - 0.01, f"{method}: loss {before:.4f} -> {after:.4f}"

    manifest = read_manifest(out)
    assert manifest.family == family and manifest.method == method
    assert manifest.kind == ("full" if method == "full" else "adapter")
    assert 0 < outcome.trainable <= outcome.total
    assert manifest.trainable_params == outcome.trainable
    if method == "full":
        assert outcome.trainable == outcome.total
    else:
        assert outcome.trainable / outcome.total < 0.2

    reloaded = load_model(out)
    expected = trained.predict_proba(texts[:12])
    got = reloaded.predict_proba(texts[:12])
    assert got.shape == (12, 3)
    assert torch.allclose(torch.tensor(got.sum(axis=1)), torch.ones(12, dtype=torch.float64))
    assert abs(got - expected).max() < 1e-5, f"{method}: reloaded model predicts differently"

    base_after = _base_state(trained.model)
    if method in ("lora", "prefix", "prompt", "adapter"):
        # The base weights are bit-identical after training (only added weights moved).
        for name, tensor in untouched.items():
            assert torch.equal(base_after[name], tensor), f"{method} changed base weight {name}"
    elif method == "full":
        changed = [n for n, t in untouched.items() if not torch.equal(base_after[n], t)]
        assert changed, "full fine-tuning left every weight unchanged"
    if method == "qlora":
        layers = [m for m in reloaded.model.modules() if type(m).__name__ == "Linear4bit"]
        assert layers, "QLoRA without 4-bit layers"
        assert all(type(p).__name__ == "Params4bit" for m in layers for p in [m.weight])
        head = [
            m for n, m in reloaded.model.named_modules() if n.endswith(("classifier", "lm_head"))
        ]
        assert head and all(type(m).__name__ != "Linear4bit" for m in head)
        assert manifest.quantization == "nf4"
