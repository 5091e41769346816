"""Bottleneck adapters (Houlsby et al., 2019), written here because peft does not have them.

A small residual MLP (down-projection, non-linearity, up-projection) follows the output
projection of every attention and feed-forward sub-layer. The up-projection starts at zero, so
before the first step the adapted model computes exactly what the base computes, and training
starts from the base model. Adapters are attached with forward hooks and kept in their own
`ModuleDict`, so the base's modules, parameter names and values stay untouched (bit-identical),
and the same code serves any architecture whose projections return a tensor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from bot.errors import UserError


class Bottleneck(nn.Module):
    def __init__(self, dim: int, size: int) -> None:
        super().__init__()
        self.down = nn.Linear(dim, size)
        self.act = nn.GELU()
        self.up = nn.Linear(size, dim)
        nn.init.normal_(self.down.weight, std=0.02)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden.to(self.down.weight.dtype)))).to(
            hidden.dtype
        )


def output_width(module: nn.Module) -> int:
    """The width of a projection's output (nn.Linear, GPT-2's Conv1D, quantised linears)."""
    for attribute in ("out_features", "nf"):
        value = getattr(module, attribute, None)
        if isinstance(value, int):
            return value
    raise UserError(f"cannot attach an adapter after {type(module).__name__}: unknown output width")


def find_targets(model: nn.Module, targets: Sequence[str]) -> list[str]:
    """Module names that end with one of `targets` (a dotted suffix), in model order."""
    found = []
    for name, _ in model.named_modules():
        if any(name == t or name.endswith("." + t) for t in targets):
            found.append(name)
    if not found:
        raise UserError(
            f"no module matches the adapter targets {list(targets)}; "
            "set training.adapter_targets to this model's projection names"
        )
    return found


def _key(name: str) -> str:
    return name.replace(".", "__")


class AdapterModel(nn.Module):
    """A base model with bottleneck adapters after the named modules; `base` is never changed."""

    def __init__(self, base: nn.Module, targets: Sequence[str], size: int) -> None:
        super().__init__()
        self.base = base
        self.target_names = find_targets(base, targets)
        self.size = size
        modules = dict(base.named_modules())
        reference = next(iter(base.parameters()))
        self.adapters = nn.ModuleDict()
        self._hooks: list[Any] = []
        for name in self.target_names:
            adapter = Bottleneck(output_width(modules[name]), size).to(reference.device)
            self.adapters[_key(name)] = adapter
            self._hooks.append(modules[name].register_forward_hook(self._hook(adapter)))

    @staticmethod
    def _hook(adapter: Bottleneck) -> Any:
        def apply(_module: nn.Module, _inputs: Any, output: Any) -> Any:
            if isinstance(output, torch.Tensor):
                return adapter(output)
            return (adapter(output[0]), *output[1:])

        return apply

    @property
    def config(self) -> Any:
        return self.base.config

    def forward(self, **inputs: Any) -> Any:
        return self.base(**inputs)

    def settings(self) -> dict[str, Any]:
        return {"size": self.size, "targets": list(self.target_names)}
