"""Dropout with a cheaper random source, swapped in for the training loop only.

A profile of one LoRA step on MiniLM (batch 32, one CPU thread) put a third of the step's CPU
time in dropout, almost all of it in `aten::bernoulli_`: torch's CPU Bernoulli draws one
Mersenne-Twister number per element, which costs about as much as one of the layer's matrix
products. The same keep-masks can be made from 32 random bits per element, two elements to one
64-bit draw of the same torch generator, and a comparison: half the draws, no per-element float
conversion, about half the time (`bench/train_speed.py` has the figures).

What stays the same: each element is kept with probability 1 - p and scaled by 1 / (1 - p), so
the expectation and the gradient's distribution are those of `nn.Dropout`; p is represented to
2**-32 (the threshold is rounded to a whole number of 2**-32 steps and the scale uses that exact
p). The masks come from torch's global generator, so seeding and a checkpoint's saved RNG state
make a run repeat and resume exactly as before. What changes: the particular masks a seed gives,
so a seeded run's weights differ from those of the toolkit before this module (same recipe, a
different draw). Evaluation (eval mode) is untouched: dropout is the identity there either way.
Attention-probability dropout is not an `nn.Dropout` call (SDPA applies it inside its kernel from
the module's `p`), and stays as it is: `FastDropout` keeps `p`, which is all SDPA reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

_SPAN = 2**32
_INT32_MIN = -(2**31)


def keep_threshold(p: float) -> tuple[int, float]:
    """(signed 32-bit threshold, scale): an element whose random int32 is >= the threshold is
    kept; the scale is 1 / (1 - p') for the p' = steps / 2**32 the threshold stands for."""
    steps = min(_SPAN - 1, max(0, round(p * _SPAN)))
    kept = 1.0 - steps / _SPAN
    return _INT32_MIN + steps, 1.0 / kept


def keep_mask(like: torch.Tensor, p: float) -> torch.Tensor:
    """A tensor shaped like `like`, 0 where dropped and 1 / (1 - p) where kept."""
    threshold, scale = keep_threshold(p)
    count = like.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((count + 1) // 2,), dtype=torch.int64)
    bits = words.view(torch.int32)[:count].view(like.shape)
    return (bits >= threshold).to(like.dtype).mul_(scale)


class FastDropout(nn.Dropout):
    """`nn.Dropout` with the mask of `keep_mask`; an `nn.Dropout` still (`p`, `inplace`), so
    code that reads `module.p` (SDPA attention) or checks the type sees no difference."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or input.numel() == 0:
            return input
        if self.p >= 1.0:
            return torch.zeros_like(input)
        return input * keep_mask(input, self.p)


@contextmanager
def fast_dropout(model: nn.Module) -> Iterator[int]:
    """Swap every plain `nn.Dropout` in `model` for a `FastDropout` of the same p, and put the
    originals back on the way out (also after an error or an interrupt), so the model that is
    saved, merged or served afterwards holds exactly the modules it was built with. Yields how
    many were swapped."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                replacement = FastDropout(child.p, child.inplace)
                replacement.train(child.training)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))
    try:
        yield len(swapped)
    finally:
        for parent, name, original in reversed(swapped):
            current = getattr(parent, name)
            original.train(current.training)
            setattr(parent, name, original)
