"""A bf16 run's cheaper dropout: the distribution of `nn.Dropout` (keep rate, scale, gradient),
seeded like it, identity in eval mode, the model's own modules back afterwards, and only in
bf16 runs (an fp32 run repeats the weights of every fp32 run before it)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn

from bot.config import TrainingConfig
from training.fast_dropout import FastDropout, fast_dropout, keep_threshold, random_int16
from training.pipeline import DataRequest, build_trainable, train_model


def test_keep_rate_and_scale_are_those_of_dropout() -> None:
    torch.manual_seed(3)
    ones = torch.ones(1_000_000)
    out = FastDropout(0.1).train()(ones)
    kept = out != 0
    # binomial standard deviation of the share is 0.0003: 0.002 is more than 6 of them
    assert abs(float(kept.float().mean()) - 0.9) < 0.002
    _, scale = keep_threshold(0.1)
    assert scale == pytest.approx(1 / 0.9, rel=1e-4)
    assert torch.all(out[kept] == torch.tensor(scale, dtype=torch.float32))
    assert abs(float(out.mean()) - 1.0) < 0.003  # inverted dropout keeps the expectation


def test_bf16_inputs_stay_bf16_and_keep_the_rate() -> None:
    torch.manual_seed(4)
    out = FastDropout(0.25).train()(torch.ones(400_000, dtype=torch.bfloat16))
    assert out.dtype == torch.bfloat16
    assert abs(float((out != 0).float().mean()) - 0.75) < 0.003


def test_threshold_edges() -> None:
    assert keep_threshold(0.0) == (-(2**15), 1.0)
    assert keep_threshold(0.5)[0] == 0
    threshold, scale = keep_threshold(0.25)
    assert threshold == -(2**14) and scale == pytest.approx(4 / 3)
    assert keep_threshold(0.1)[1] == pytest.approx(1 / (1 - 6554 / 65536), rel=1e-12)
    assert FastDropout(1.0).train()(torch.ones(5)).abs().sum() == 0


def test_the_random_halves_are_independent_of_position() -> None:
    """Each 16-bit lane of a 64-bit word must be as uniform as the others: a lane that were
    always high (a sign bit, a shifted draw) would keep that element more often."""
    torch.manual_seed(9)
    lanes = random_int16(torch.empty(400_000)).view(-1, 4).float()
    means = lanes.mean(dim=0) / 2**15  # uniform on [-1, 1): mean 0, sd of the mean 0.0018
    assert torch.all(means.abs() < 0.012), means


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
    assert float(values[1]) == pytest.approx(1 / 0.7, rel=1e-4)


def test_seeded_masks_repeat_and_seeds_differ() -> None:
    like = torch.ones(257, 33)  # a count not divisible by 4: the last word is part used
    torch.manual_seed(11)
    first = FastDropout(0.1).train()(like)
    torch.manual_seed(11)
    again = FastDropout(0.1).train()(like)
    torch.manual_seed(12)
    other = FastDropout(0.1).train()(like)
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


@pytest.mark.parametrize(("precision", "fast"), [("bf16", True), ("fp32", False)])
def test_only_a_bf16_run_trains_through_the_fast_masks(
    precision: str,
    fast: bool,
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = tiny_config(base=str(tiny_bert), lora_dropout=0.1, epochs=1, precision=precision)
    seen: list[bool] = []
    original = FastDropout.forward

    def spy(self: FastDropout, input: torch.Tensor) -> torch.Tensor:
        seen.append(self.training)
        return original(self, input)

    monkeypatch.setattr(FastDropout, "forward", spy)
    outcome = train_model(cfg, DataRequest(str(news_csv)), tmp_path / "run", progress=False)
    assert (True in seen) is fast  # masks drawn in training steps; eval mode is the identity
    assert not any(type(m) is FastDropout for m in outcome.classifier.model.modules())
