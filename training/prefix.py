"""Prefix-tuning for encoders (Li & Liang, 2021), where peft cannot do it.

peft's prefix-tuning feeds the prefix in as a key/value cache, and the transformers 5 encoders
(BERT and its family) no longer take one, so here the learned keys and values are prepended inside
attention itself: the model is switched to a registered attention function that concatenates this
layer's prefix to the keys and values, widens the padding mask to match, and hands over to the
standard SDPA kernel. The base weights are never touched; with the optional reparameterisation
the prefix comes out of a two-layer MLP (more stable to train), which is kept in the saved file.
Decoders use peft's own prefix-tuning.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

from bot.errors import UserError

ATTENTION_NAME = "lorabot_prefix"
_LINK = "_lorabot_prefix_link"
_registered = False


def _register() -> None:
    """Register the attention function once per process (by name, so it is idempotent)."""
    global _registered
    if _registered:
        return
    from transformers import AttentionInterface
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    def attention(
        module: nn.Module,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attention_mask: torch.Tensor | None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        link = module.__dict__.get(_LINK)
        owner = link[0]() if link else None
        if owner is not None and owner.current is not None:
            prefix_key, prefix_value = owner.current[link[1]]
            key = torch.cat([prefix_key.to(key.dtype), key], dim=2)
            value = torch.cat([prefix_value.to(value.dtype), value], dim=2)
            if attention_mask is not None:
                width = prefix_key.shape[2]
                shape = (*attention_mask.shape[:-1], width)
                if attention_mask.dtype == torch.bool:
                    pad = torch.ones(shape, dtype=torch.bool, device=attention_mask.device)
                else:
                    pad = torch.zeros(
                        shape, dtype=attention_mask.dtype, device=attention_mask.device
                    )
                attention_mask = torch.cat([pad, attention_mask], dim=-1)
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    AttentionInterface.register(ATTENTION_NAME, attention)
    AttentionMaskInterface.register(ATTENTION_NAME, sdpa_mask)
    _registered = True


def _attention_modules(model: nn.Module) -> list[nn.Module]:
    found = [
        m
        for m in model.modules()
        if isinstance(getattr(m, "layer_idx", None), int)
        and (hasattr(m, "attention_head_size") or hasattr(m, "head_dim"))
    ]
    return sorted(found, key=lambda m: m.layer_idx)


class PrefixEncoderModel(nn.Module):
    """A base encoder classifier with `tokens` learned key/value vectors per layer."""

    def __init__(self, base: nn.Module, tokens: int, projection: bool, hidden: int) -> None:
        super().__init__()
        _register()
        self.base = base
        layers = _attention_modules(base)
        if not layers:
            raise UserError(
                f"prefix-tuning found no attention layers in {type(base).__name__}; "
                "use another method for this model"
            )
        config = base.config
        self.num_layers = len(layers)
        self.heads = int(config.num_attention_heads)
        self.head_dim = int(getattr(layers[0], "attention_head_size", 0) or layers[0].head_dim)
        self.tokens = tokens
        self.projection = projection
        self.hidden = hidden
        width = self.num_layers * 2 * self.heads * self.head_dim
        if projection:
            self.embedding = nn.Embedding(tokens, config.hidden_size)
            self.transform: nn.Module = nn.Sequential(
                nn.Linear(config.hidden_size, hidden), nn.Tanh(), nn.Linear(hidden, width)
            )
        else:
            self.embedding = nn.Embedding(tokens, width)
            self.transform = nn.Identity()
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.current: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        for index, module in enumerate(layers):
            module.__dict__[_LINK] = (weakref.ref(self), index)
        base.set_attn_implementation(ATTENTION_NAME)

    @property
    def config(self) -> Any:
        return self.base.config

    def prefixes(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        index = torch.arange(self.tokens, device=self.embedding.weight.device)
        flat = self.transform(self.embedding(index))  # (tokens, layers * 2 * heads * head_dim)
        shaped = flat.view(self.tokens, self.num_layers * 2, self.heads, self.head_dim)
        shaped = shaped.permute(1, 2, 0, 3)  # (layers * 2, heads, tokens, head_dim)
        return [
            (
                shaped[2 * i].unsqueeze(0).expand(batch, -1, -1, -1),
                shaped[2 * i + 1].unsqueeze(0).expand(batch, -1, -1, -1),
            )
            for i in range(self.num_layers)
        ]

    def forward(self, **inputs: Any) -> Any:
        ids = inputs.get("input_ids")
        batch = ids.shape[0] if ids is not None else inputs["inputs_embeds"].shape[0]
        self.current = self.prefixes(batch)
        try:
            return self.base(**inputs)
        finally:
            self.current = None

    def settings(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "projection": self.projection, "hidden": self.hidden}
