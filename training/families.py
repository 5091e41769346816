"""The two model families behind one question: "bearish, neutral or bullish, and how sure?"

An encoder (BERT family) answers through a 3-class head whose rows are in the project order. A
decoder (GPT-2 / Llama / Qwen family) answers with the next token after a fixed prompt: only the
three label words' logits are read, so the answer is always one of the classes, and their softmax
is the confidence. That is also how vLLM scores a served adapter (the next token's logprobs), so
the prompt is tokenised exactly as a server tokenises it (the tokenizer's own special tokens), and
a text that is too long is cut, never the prompt around it.

Importing this module does not import torch; the functions that need it import it themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from bot.errors import UserError
from bot.manifest import (
    DEFAULT_LABEL_WORDS,
    DEFAULT_PROMPT,
    LABELS,
    label_word_ids,
    prompt_token_ids,
)

if TYPE_CHECKING:
    import torch

Family = Literal["encoder", "decoder"]

ENCODER_TYPES = frozenset(
    {
        "bert",
        "roberta",
        "xlm-roberta",
        "distilbert",
        "albert",
        "electra",
        "deberta",
        "deberta-v2",
        "mpnet",
        "camembert",
        "ernie",
        "modernbert",
        "megatron-bert",
        "nomic_bert",
    }
)
# LoRA targets: encoders adapt attention and feed-forward projections (measured on MiniLM: q/v
# alone 0.835 TFNS accuracy, all of them 0.870); decoders the names vLLM can serve LoRA on.
ENCODER_LORA_TARGETS = ("query", "key", "value", "dense")
DECODER_LORA_TARGETS = {
    "gpt2": ("c_attn", "c_proj", "c_fc"),
    "gpt_neox": ("query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"),
}
DEFAULT_DECODER_LORA_TARGETS = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
# Bottleneck adapters follow the projection that ends each sub-layer (attention, feed-forward),
# before its residual sum, as in Houlsby et al. (2019).
ADAPTER_TARGETS = {
    "bert": ("attention.output.dense", "output.dense"),
    "roberta": ("attention.output.dense", "output.dense"),
    "xlm-roberta": ("attention.output.dense", "output.dense"),
    "electra": ("attention.output.dense", "output.dense"),
    "distilbert": ("attention.out_lin", "ffn.lin2"),
    "gpt2": ("attn.c_proj", "mlp.c_proj"),
}
DEFAULT_ADAPTER_TARGETS = ("self_attn.o_proj", "mlp.down_proj")


def detect_family(config: Any, override: str = "auto") -> Family:
    """Encoder or decoder, from a transformers config (or the user's explicit choice)."""
    if override in ("encoder", "decoder"):
        return override  # type: ignore[return-value]
    model_type = str(getattr(config, "model_type", ""))
    if model_type in ENCODER_TYPES and not getattr(config, "is_decoder", False):
        return "encoder"
    architectures = [str(a) for a in getattr(config, "architectures", None) or []]
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures):
        return "decoder"
    if any(a.endswith(("ForSequenceClassification", "Model")) for a in architectures) and (
        model_type in ENCODER_TYPES
    ):
        return "encoder"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    if model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return "decoder"
    raise UserError(
        f"cannot tell whether model type {model_type!r} is an encoder or a decoder; "
        "pass --family encoder|decoder"
    )


def default_lora_targets(family: Family, model_type: str) -> tuple[str, ...]:
    if family == "encoder":
        return ENCODER_LORA_TARGETS
    return DECODER_LORA_TARGETS.get(model_type, DEFAULT_DECODER_LORA_TARGETS)


def default_adapter_targets(model_type: str) -> tuple[str, ...]:
    return ADAPTER_TARGETS.get(model_type, DEFAULT_ADAPTER_TARGETS)


def id2label() -> dict[int, str]:
    return dict(enumerate(LABELS))


def label2id() -> dict[str, int]:
    return {label: index for index, label in enumerate(LABELS)}


# --------------------------------------------------------------------------------------------
# Decoders: prompt and label words


@dataclass(frozen=True)
class PromptSpec:
    """What a decoder reads and which tokens it answers with."""

    template: str
    words: tuple[str, str, str]
    token_ids: tuple[int, int, int]


def ensure_pad_token(tokenizer: Any) -> None:
    """Decoders often ship without a pad token; padding is masked out, so EOS serves."""
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


def check_template(template: str) -> str:
    if template.count("{text}") != 1:
        raise UserError("the decoder prompt must contain {text} exactly once")
    if not template.rstrip() or template.endswith("{text}"):
        raise UserError("the decoder prompt must end with text after {text} (e.g. 'Sentiment:')")
    return template


def label_token_ids(tokenizer: Any, template: str, words: Sequence[str]) -> tuple[int, int, int]:
    """The token each label word becomes when it follows the prompt; each must be one token
    (`bot.manifest.label_word_ids`, which serving calls too)."""
    if len(words) != 3 or len({w.strip().lower() for w in words}) != 3:
        raise UserError("label words must be three different words (bearish, neutral, bullish)")
    return label_word_ids(tokenizer, template, words, hint="choose another with --label-words")


def prompt_spec(tokenizer: Any, template: str = "", words: Sequence[str] = ()) -> PromptSpec:
    chosen = check_template(template or DEFAULT_PROMPT)
    chosen_words = tuple(words) if words else DEFAULT_LABEL_WORDS
    ids = label_token_ids(tokenizer, chosen, chosen_words)
    return PromptSpec(chosen, (chosen_words[0], chosen_words[1], chosen_words[2]), ids)


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    family: Family,
    max_length: int,
    template: str | None = None,
) -> list[list[int]]:
    """Token ids per text, unpadded (batches are padded to their own longest row)."""
    if family == "encoder":
        encoded = tokenizer(list(texts), truncation=True, max_length=max_length)
        return [list(ids) for ids in encoded["input_ids"]]
    assert template is not None
    return [prompt_token_ids(tokenizer, template, text, max_length) for text in texts]


def collate(rows: Sequence[Sequence[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded `input_ids` and `attention_mask` (positions then match an unpadded server)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


def label_logits(
    model: Any,
    batch: dict[str, torch.Tensor],
    family: Family,
    token_ids: Sequence[int] | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(logits over our three labels, the decoder's full next-token logits or None)."""
    import torch

    outputs = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    logits = outputs.logits
    if family == "encoder":
        return logits.float(), None
    # Prompt-tuning prepends virtual tokens to the sequence; the last real token moves with them.
    offset = logits.shape[1] - batch["input_ids"].shape[1]
    last = batch["attention_mask"].sum(dim=1) - 1 + offset
    rows = torch.arange(logits.shape[0], device=logits.device)
    vocab = logits[rows, last].float()
    assert token_ids is not None
    return vocab[:, list(token_ids)], vocab
