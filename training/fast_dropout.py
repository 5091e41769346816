"""Dropout with a cheaper random source, for bf16 training runs.

Why: once the matrix products run in bf16 (`training.precision`), a profile of one LoRA step on
MiniLM puts about 28% of it in `aten::bernoulli_`: torch's CPU Bernoulli draws one
Mersenne-Twister number per element, and a LoRA step applies dropout to the input of every
adapted layer (the 1,536-wide FFN output included) besides the model's own hidden dropout.
The same keep-masks can be made from 16 random bits per element, four elements to one 64-bit
draw of the same torch generator, and one fused select: a quarter of the draws and no float
conversion of the random numbers.

What stays the same: each element is kept with probability 1 - p' and scaled by 1 / (1 - p'),
where p' is p rounded to a whole number of 2**-16 steps (0.1 becomes 0.1000061), so the
expectation and the gradient's distribution are those of `nn.Dropout` at p'. The masks come
from torch's global generator, so seeding and a checkpoint's saved RNG state make a run repeat
and resume exactly. What changes: the particular masks a seed gives. That is why only bf16 runs
use it: a bf16 run already differs from the fp32 one in its rounding, while an fp32 run keeps
`nn.Dropout` and repeats the weights of every fp32 run before this module. Evaluation is
untouched (dropout is the identity there), and attention-probability dropout is not an
`nn.Dropout` call (SDPA applies it in its kernel from the module's `p`), so it stays as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import nn

_BITS = 16
_SPAN = 2**_BITS
_LOWEST = -(2 ** (_BITS - 1))
_PER_WORD = 64 // _BITS


def keep_threshold(p: float) -> tuple[int, float]:
    """(signed 16-bit threshold, scale): an element whose random int16 is >= the threshold is
    kept; the scale is 1 / (1 - p') for the p' = steps / 2**16 the threshold stands for."""
    steps = min(_SPAN - 1, max(0, round(p * _SPAN)))
    return _LOWEST + steps, 1.0 / (1.0 - steps / _SPAN)


def random_int16(like: torch.Tensor) -> torch.Tensor:
    """Uniform int16s shaped like `like`, four to each 64-bit draw of torch's generator."""
    count = like.numel()
    words = torch.empty((count + _PER_WORD - 1) // _PER_WORD, dtype=torch.int64)
    words.random_(-(2**63), 2**63 - 1)  # all 64 bits: a bare random_() leaves the sign bit 0
    return words.view(torch.int16)[:count].view(like.shape)


def dropped(input: torch.Tensor, p: float) -> torch.Tensor:
    """`input` with each element zeroed with probability p' and the rest scaled by 1 / (1 - p')."""
    threshold, scale = keep_threshold(p)
    return torch.where(random_int16(input) >= threshold, input * scale, 0.0)


class FastDropout(nn.Dropout):
    """`nn.Dropout` with the masks of `dropped`; an `nn.Dropout` still (`p`, `inplace`), so code
    that reads `module.p` (SDPA attention) or checks the type sees no difference."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or input.numel() == 0:
            return input
        if self.p >= 1.0:
            return torch.zeros_like(input)
        return dropped(input, self.p)


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


def masks_for(precision: str, model: nn.Module) -> AbstractContextManager[int]:
    """The dropout a training run of `precision` draws: the fast masks for bf16, the model's
    own `nn.Dropout` (nothing swapped) for fp32, for the reason in the module docstring."""
    return fast_dropout(model) if precision == "bf16" else nullcontext(0)
