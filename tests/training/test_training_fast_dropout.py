"""The training loop's cheaper dropout: the same distribution as `nn.Dropout` (keep rate, scale,
gradient), seeded like it, identity in eval mode, and the model's own modules back afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from bot.config import TrainingConfig
from training.fast_dropout import FastDropout, fast_dropout, keep_mask, keep_threshold
from training.pipeline import DataRequest, build_trainable, train_model


def test_keep_rate_and_scale_are_those_of_dropout() -> None:
    torch.manual_seed(3)
    ones = torch.ones(1_000_000)
    out = FastDropout(0.1).train()(ones)
    kept = out != 0
    # binomial standard deviation of the share is 0.0003: 0.002 is more than 6 of them
    assert abs(float(kept.float().mean()) - 0.9) < 0.002
    _, scale = keep_threshold(0.1)
    assert scale == pytest.approx(1 / 0.9, rel=1e-9)
    assert torch.all(out[kept] == torch.tensor(scale, dtype=torch.float32))
    assert abs(float(out.mean()) - 1.0) < 0.003  # inverted dropout keeps the expectation


def test_threshold_edges() -> None:
    assert keep_threshold(0.0) == (-(2**31), 1.0)
    assert keep_threshold(0.5)[0] == 0
    threshold, scale = keep_threshold(0.25)
    assert threshold == -(2**30) and scale == pytest.approx(4 / 3)
    assert FastDropout(1.0).train()(torch.ones(5)).abs().sum() == 0


def test_the_gradient_is_the_mask() -> None:
    torch.manual_seed(5)
    x = torch.randn(64, 48, requires_grad=True)
    out = FastDropout(0.3).train()(x)
    out.sum().backward()
    assert x.grad is not None
    mask = out.detach() / x.detach()
    assert torch.allclose(x.grad, mask)
    values = torch.unique(x.grad)
    assert len(values) == 2 and values[0] == 0
    assert float(values[1]) == pytest.approx(1 / 0.7, rel=1e-6)


def test_seeded_masks_repeat_and_seeds_differ() -> None:
    like = torch.empty(257, 33)  # an odd count: the last 64-bit word is half used
    torch.manual_seed(11)
    first = keep_mask(like, 0.1)
    torch.manual_seed(11)
    again = keep_mask(like, 0.1)
    torch.manual_seed(12)
    other = keep_mask(like, 0.1)
    assert torch.equal(first, again)
    assert not torch.equal(first, other)


def test_eval_mode_is_the_identity() -> None:
    x = torch.randn(4, 8)
    assert FastDropout(0.5).eval()(x) is x


def test_the_swap_covers_every_dropout_and_puts_the_originals_back(
    tiny_bert: Path, tiny_config: Callable[..., TrainingConfig]
) -> None:
    model = build_trainable(tiny_config(base=str(tiny_bert), lora_dropout=0.1)).model
    before = {name: m for name, m in model.named_modules() if isinstance(m, nn.Dropout)}
    assert len(before) > 10  # hidden, attention, classifier and one per LoRA module
    with pytest.raises(RuntimeError, match="boom"), fast_dropout(model) as count:
        assert count == len(before)
        inside = {name: m for name, m in model.named_modules() if isinstance(m, nn.Dropout)}
        assert inside.keys() == before.keys()
        assert all(type(m) is FastDropout for m in inside.values())
        assert all(inside[n].p == before[n].p for n in before)
        raise RuntimeError("boom")
    after = {name: m for name, m in model.named_modules() if isinstance(m, nn.Dropout)}
    assert all(after[n] is before[n] for n in before)


def test_training_runs_with_the_fast_masks(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    cfg = tiny_config(base=str(tiny_bert), lora_dropout=0.1, epochs=1)
    seen: list[type] = []
    original = FastDropout.forward

    def spy(self: FastDropout, input: torch.Tensor) -> torch.Tensor:
        seen.append(type(self))
        return original(self, input)

    FastDropout.forward = spy  # type: ignore[method-assign]
    try:
        outcome = train_model(cfg, DataRequest(str(news_csv)), tmp_path / "run", progress=False)
    finally:
        FastDropout.forward = original  # type: ignore[method-assign]
    assert seen, "the training steps did not go through FastDropout"
    model = outcome.classifier.model
    assert not any(type(m) is FastDropout for m in model.modules())
