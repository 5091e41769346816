"""A BERT sentence classifier for inference that does not import transformers.

Why: importing transformers' BERT costs 3.5-5.5 s on this machine (it pulls generation, loss,
scipy and distributed-tensor modules that a classifier never runs), and a cold `lorabot classify`,
a backtest and a daemon start paid it on every run: more than the model load and often more than
the classifying itself. This module computes the same function as transformers'
`BertForSequenceClassification` in eval mode (absolute positions, erf GELU, post-LayerNorm, tanh
pooler over [CLS], a linear head) from the same safetensors, with the same module names, so the
direct LoRA merge in `inference_loader` applies to it unchanged. The tokenizer is the model's own
`tokenizer.json` run by the `tokenizers` library, which is what transformers' fast tokenizer runs.

It is used only where it is known to compute exactly that (`compact_source`): a BERT config with
those choices, one `model.safetensors`, a `tokenizer.json`, and a head our label order owns (a
lorabot adapter's or a lorabot-saved model's). Anything else loads through transformers; the
tests compare both on the same weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import torch

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
TOKENIZER = "tokenizer.json"
_BERT_PARTS = ("embeddings.", "encoder.", "pooler.")


class CompactTokenizer:
    """The slice of a transformers fast tokenizer that inference uses, on `tokenizers` alone."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        self.folder = folder
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER))
        self._tokenizer.no_padding()  # tokenizer.json may carry its own; the caller pads
        self._max_length = 0
        self.pad_token_id: int | None = _pad_id(folder, self._tokenizer)

    def __call__(
        self,
        texts: str | list[str],
        truncation: bool = False,
        max_length: int | None = None,
        add_special_tokens: bool = True,
    ) -> dict[str, Any]:
        limit = max_length if truncation and max_length else 0
        if limit != self._max_length:
            if limit:
                self._tokenizer.enable_truncation(limit)
            else:
                self._tokenizer.no_truncation()
            self._max_length = limit
        if isinstance(texts, str):
            one = self._tokenizer.encode(texts, add_special_tokens=add_special_tokens)
            return {"input_ids": list(one.ids)}
        many = self._tokenizer.encode_batch(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [list(encoding.ids) for encoding in many]}


def _pad_id(folder: Path, tokenizer: Any) -> int | None:
    for name in ("tokenizer_config.json", "special_tokens_map.json"):
        try:
            data = json.loads((folder / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        token = data.get("pad_token")
        if isinstance(token, dict):
            token = token.get("content")
        if isinstance(token, str):
            found = tokenizer.token_to_id(token)
            if found is not None:
                return int(found)
    return None


def read_config(folder: Path) -> dict[str, Any] | None:
    try:
        return dict(json.loads((folder / CONFIG).read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def supported_config(config: dict[str, Any]) -> bool:
    """The BERT variants whose function this module reproduces exactly."""
    return (
        config.get("model_type") == "bert"
        and config.get("hidden_act") == "gelu"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and not config.get("is_decoder")
        and not config.get("add_cross_attention")
        and config.get("hidden_size", 0) % max(1, config.get("num_attention_heads", 1)) == 0
    )


def canonical(name: str) -> str:
    """A checkpoint key as `BertForSequenceClassification` names it (`BertModel` saves bare)."""
    return f"bert.{name}" if name.startswith(_BERT_PARTS) else name


class Output(NamedTuple):
    logits: torch.Tensor


def build(config: dict[str, Any]) -> Any:
    """An fp32 classifier with `BertForSequenceClassification`'s module names, weights unset."""
    import torch
    from torch import nn
    from torch.nn import functional

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    eps = float(config.get("layer_norm_eps", 1e-12))
    width = int(config["intermediate_size"])

    class Embeddings(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.word_embeddings = nn.Embedding(int(config["vocab_size"]), hidden)
            self.position_embeddings = nn.Embedding(int(config["max_position_embeddings"]), hidden)
            self.token_type_embeddings = nn.Embedding(int(config.get("type_vocab_size", 2)), hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

        def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
            positions = self.position_embeddings.weight[: input_ids.shape[1]]
            token_type = self.token_type_embeddings.weight[0]  # one segment: type 0
            return self.LayerNorm(self.word_embeddings(input_ids) + positions + token_type)

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.query = nn.Linear(hidden, hidden)
            self.key = nn.Linear(hidden, hidden)
            self.value = nn.Linear(hidden, hidden)
            self.heads = heads  # read by the ONNX export's last layer (`onnx_graph`)

        def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            batch, length, _ = x.shape

            def split(t: torch.Tensor) -> torch.Tensor:
                return t.view(batch, length, heads, hidden // heads).transpose(1, 2)

            context = functional.scaled_dot_product_attention(
                split(self.query(x)), split(self.key(x)), split(self.value(x)), attn_mask=keep
            )
            return context.transpose(1, 2).reshape(batch, length, hidden)

    class DenseNorm(nn.Module):
        """`dense` then LayerNorm over the residual: BERT's SelfOutput and Output."""

        def __init__(self, inner: int) -> None:
            super().__init__()
            self.dense = nn.Linear(inner, hidden)
            self.LayerNorm = nn.LayerNorm(hidden, eps=eps)

        def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
            return self.LayerNorm(self.dense(x) + residual)

    class Attention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.self = SelfAttention()
            self.output = DenseNorm(hidden)

    class Intermediate(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Linear(hidden, width)

    class Layer(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.attention = Attention()
            self.intermediate = Intermediate()
            self.output = DenseNorm(width)

        def forward(self, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
            x = self.attention.output(self.attention.self(x, keep), x)
            return self.output(functional.gelu(self.intermediate.dense(x)), x)

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = nn.ModuleList(Layer() for _ in range(int(config["num_hidden_layers"])))

    class Pooler(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Linear(hidden, hidden)

    class Bert(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embeddings = Embeddings()
            self.encoder = Encoder()
            self.pooler = Pooler()

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = Bert()
            self.classifier = nn.Linear(hidden, 3)

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Output:
            x = self.bert.embeddings(input_ids)
            keep = attention_mask[:, None, None, :].bool()  # True: attend (padding is masked)
            for layer in self.bert.encoder.layer:
                x = layer(x, keep)
            pooled = torch.tanh(self.bert.pooler.dense(x[:, 0]))
            return Output(self.classifier(pooled))

    return Classifier()


def load_weights(model: Any, folder: Path) -> None:
    """Fill `model` from `folder/model.safetensors`; every weight but the head must be there."""
    from safetensors.torch import load_file

    state = {canonical(k): v for k, v in load_file(str(folder / WEIGHTS)).items()}
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state and not k.startswith("classifier.")]
    if missing:
        raise KeyError(f"{folder / WEIGHTS}: missing {', '.join(missing[:3])}")
    model.load_state_dict({k: v for k, v in state.items() if k in wanted}, strict=False)


def load(folder: Path, tokenizer_folder: Path) -> tuple[Any, CompactTokenizer]:
    config = read_config(folder)
    if config is None:
        raise ValueError(f"{folder}: no readable {CONFIG}")
    model = build(config)
    load_weights(model, folder)
    return model, CompactTokenizer(tokenizer_folder)
