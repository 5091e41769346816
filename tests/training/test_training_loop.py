"""The loop: seeded runs repeat exactly, an interrupted run resumes to the very same weights,
gradient accumulation equals the larger batch, and early stopping keeps the best weights."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from bot.config import TrainingConfig
from bot.errors import UserError
from training.data import load_examples
from training.families import encode_texts
from training.loop_state import fingerprint, latest_checkpoint
from training.pipeline import DataRequest, build_trainable, prepare_split, train_model
from training.trainer import Encoded, Trainer


def _trainer(cfg: TrainingConfig, news_csv: Path, out: Path) -> Trainer:
    built = build_trainable(cfg)
    split, _ = prepare_split(DataRequest(str(news_csv)), cfg)
    base = built.base
    template = built.prompt.template if built.prompt else None

    def encode(texts: list[str]) -> list[list[int]]:
        return encode_texts(base.tokenizer, texts, base.family, cfg.max_length, template)

    return Trainer(
        built.model,
        cfg,
        base.family,
        split,
        Encoded.of(split.train, encode),
        Encoded.of(split.valid, encode),
        pad_id=int(base.tokenizer.pad_token_id or 0),
        token_ids=built.prompt.token_ids if built.prompt else None,
        learning_rate=cfg.learning_rate,
        out=out,
        fingerprint=fingerprint(cfg, {}, split),
        progress=False,
    )


def _weights(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}


def test_interrupted_run_resumes_to_identical_weights(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    # Dropout on (LoRA), so the random state must be restored too.
    cfg = tiny_config(base=str(tiny_bert), learning_rate=2e-2, lora_dropout=0.1, epochs=3)
    straight = _trainer(cfg, news_csv, tmp_path / "straight")
    straight.run()
    expected = _weights(straight)

    first = _trainer(cfg, news_csv, tmp_path / "resumed")
    calls = {"n": 0}

    def interrupt(*_: object) -> None:
        calls["n"] += 1
        if calls["n"] == 10:  # 6 steps + 1 validation pass in epoch 1, then steps 7, 8, (9)
            raise KeyboardInterrupt

    handle = first.model.register_forward_pre_hook(interrupt)
    with pytest.raises(UserError, match=r"interrupted at step 8/18.*--resume"):
        first.run()
    handle.remove()
    checkpoint = latest_checkpoint(tmp_path / "resumed" / "checkpoints")
    assert checkpoint is not None and checkpoint.name == "step-00000008"

    second = _trainer(cfg, news_csv, tmp_path / "resumed")
    assert second.resume()
    assert second.state.step == 8 and second.state.epoch == 1 and second.state.micro == 2
    result = second.run()
    assert result.state.step == 18
    for name, tensor in _weights(second).items():
        assert torch.allclose(tensor, expected[name], atol=1e-6), name


def test_resume_refuses_other_settings(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    cfg = tiny_config(base=str(tiny_bert), epochs=1)
    trainer = _trainer(cfg, news_csv, tmp_path)
    trainer.run()
    other = _trainer(tiny_config(base=str(tiny_bert), epochs=1, lora_r=8), news_csv, tmp_path)
    with pytest.raises(UserError, match="other settings or data"):
        other.resume()


def test_gradient_accumulation_equals_the_larger_batch(
    tiny_llama: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    """Llama has no dropout, so 2 x 4 accumulated must give the weights 1 x 8 gives."""
    common = {
        "base": str(tiny_llama),
        "learning_rate": 1e-2,
        "epochs": 1,
        "group_by_length": False,  # the same examples per step either way
        "precision": "fp32",  # equal in exact arithmetic: bf16 rounds 4-row and 8-row sums apart
    }
    large = _trainer(tiny_config(batch_size=8, **common), news_csv, tmp_path / "a")
    accumulated = _trainer(
        tiny_config(batch_size=4, grad_accum=2, **common), news_csv, tmp_path / "b"
    )
    assert large.total_steps == accumulated.total_steps == 6
    large.run()
    accumulated.run()
    mine = _weights(accumulated)
    # Equal up to float summation order (Adam divides by tiny second moments, so not bitwise).
    for name, tensor in _weights(large).items():
        assert torch.allclose(tensor, mine[name], atol=1e-3), name
    loss_large, probs_large = _valid(large)
    loss_accumulated, probs_accumulated = _valid(accumulated)
    assert loss_large == pytest.approx(loss_accumulated, abs=1e-4)
    assert np.allclose(probs_large, probs_accumulated, atol=1e-4)


def _valid(trainer: Trainer) -> tuple[float, np.ndarray]:
    from training.trainer import evaluate_rows

    return evaluate_rows(
        trainer.model,
        trainer.valid_data,
        trainer.family,
        trainer.token_ids,
        trainer.pad_id,
        32,
    )


def test_seeded_runs_repeat_and_seeds_differ(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    texts = [e.text for e in load_examples(news_csv)][:10]
    cfg = tiny_config(base=str(tiny_bert), epochs=1, lora_dropout=0.1)
    one = train_model(cfg, DataRequest(str(news_csv)), tmp_path / "1", progress=False)
    two = train_model(cfg, DataRequest(str(news_csv)), tmp_path / "2", progress=False)
    three = train_model(
        tiny_config(base=str(tiny_bert), epochs=1, lora_dropout=0.1, seed=7),
        DataRequest(str(news_csv)),
        tmp_path / "3",
        progress=False,
    )
    p1, p2, p3 = (o.classifier.predict_proba(texts) for o in (one, two, three))
    assert np.array_equal(p1, p2)
    assert not np.allclose(p1, p3)


def test_early_stopping_keeps_the_best_weights(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    """A validation set labelled against the training pattern gets worse as the model learns:
    training stops after `patience` bad validations and keeps the weights `keep_best` names."""
    flipped = tmp_path / "flipped.csv"
    swap = {"bullish": "bearish", "bearish": "bullish", "neutral": "neutral"}
    rows = ["text,label"]
    for example in load_examples(news_csv):
        if example.label.word != "neutral":
            rows.append(f'"{example.text} again",{swap[example.label.word]}')
    flipped.write_text("\n".join(rows) + "\n", encoding="utf-8")
    cfg = tiny_config(
        base=str(tiny_bert),
        learning_rate=3e-2,
        epochs=8,
        eval_every=2,
        patience=2,
        keep_best="loss",
    )
    outcome = train_model(
        cfg, DataRequest(str(news_csv), valid=str(flipped)), tmp_path / "m", progress=False
    )
    report = json.loads((tmp_path / "m" / "training.json").read_text())
    history = report["history"]
    assert report["stopped_early"] and outcome.stopped_early
    assert report["steps"] < 8 * 6
    best = min(history, key=lambda h: h["valid_loss"])
    assert report["best_step"] == best["step"]
    assert history[-1]["valid_loss"] > best["valid_loss"]
    assert outcome.valid["loss"] == pytest.approx(best["valid_loss"], abs=1e-4)
    assert not (tmp_path / "m" / "checkpoints").exists()  # removed after a finished run

    last = train_model(
        cfg.model_copy(update={"keep_best": "last"}),
        DataRequest(str(news_csv), valid=str(flipped)),
        tmp_path / "last",
        progress=False,
    )
    report = json.loads((tmp_path / "last" / "training.json").read_text())
    assert [h["valid_loss"] for h in report["history"]] == [h["valid_loss"] for h in history]
    assert report["best_step"] == report["steps"]
    assert last.valid["loss"] == pytest.approx(history[-1]["valid_loss"], abs=1e-4)
