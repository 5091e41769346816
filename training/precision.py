"""Training's forward passes in bf16 where the CPU computes bf16 in hardware.

Why: the matrix products are most of a LoRA step (the frozen layers' forward passes and their
input gradients), and a CPU with AVX-512 BF16 or AMX runs them in bf16 at about twice the fp32
rate. Autocast casts per operation, so the weights, the optimiser's state, the loss and the
saved adapter stay fp32; only the products' inputs are rounded. Where bf16 is emulated it is
slower than fp32, hence `auto`. QLoRA keeps its own compute dtype (bitsandbytes' 4-bit layers),
and validation always runs in fp32, so the epoch and the weights kept are chosen on the same
arithmetic whatever trained them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Literal


def resolve_training_precision(precision: str, method: str) -> Literal["fp32", "bf16"]:
    """What `[training] precision` means on this CPU for this method."""
    from adapters.model.inference import cpu_has_native_bf16

    if method == "qlora":
        return "fp32"  # bitsandbytes' layers compute in their own dtype
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "bf16" if precision == "bf16" else "fp32"


def training_autocast(precision: str) -> Callable[[], AbstractContextManager[Any]]:
    """A factory of the context the training forward pass runs in."""
    if precision != "bf16":
        return contextlib.nullcontext
    import torch

    return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
