"""The fine-tuning methods, as a table: each is a settings dataclass plus the functions that apply
it to a model, save what it trained and put it back over a fresh base.

peft provides LoRA, QLoRA's adapters, prompt-tuning and decoder prefix-tuning; the bottleneck
adapter and encoder prefix-tuning are written here (`training.bottleneck`, `training.prefix`)
because peft lacks them. Full fine-tuning is the baseline every method is compared with.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bot.config import TrainingConfig
from bot.errors import UserError
from training.families import Family, default_adapter_targets, default_lora_targets

MethodName = Literal["lora", "qlora", "prefix", "prompt", "adapter", "full"]
Storage = Literal["peft", "lorabot", "full"]
OWN_CONFIG = "lorabot_adapter.json"
OWN_WEIGHTS = "lorabot_adapter.safetensors"
# Heads that a 3-class encoder adds and that every method must train (and save) with its adapter.
HEAD_NAMES = ("classifier", "score")
# The rest of a BERT-style classification head: the pooler over [CLS]. Methods that freeze the
# base train a copy of it (the base's own stays bit-identical), because a frozen pooler that was
# never trained for the task (all-MiniLM-L6-v2's) leaves the head too little to work with: the
# bottleneck adapter, prefix- and prompt-tuning then predicted only the majority class.
HEAD_COPIES = ("pooler",)


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.1
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class PrefixSettings:
    tokens: int = 16
    projection: bool = False
    hidden: int = 256


@dataclass(frozen=True)
class PromptSettings:
    tokens: int = 16


@dataclass(frozen=True)
class AdapterSettings:
    size: int = 64
    targets: tuple[str, ...] = ()


@dataclass(frozen=True)
class FullSettings:
    pass


Settings = LoraSettings | PrefixSettings | PromptSettings | AdapterSettings | FullSettings


@dataclass(frozen=True)
class Context:
    """What a method needs to know about the model it adapts."""

    family: Family
    model_type: str


@dataclass(frozen=True)
class Method:
    name: MethodName
    summary: str
    settings_type: type
    from_config: Callable[[TrainingConfig], Any]
    apply: Callable[[nn.Module, Context, Any], nn.Module]
    encoder_lr: float
    decoder_lr: float
    quantized: bool = False
    # Whether the trained weights can be folded into the base (vLLM serves merged models only).
    mergeable: bool = False
    storage_by_family: dict[str, Storage] = field(default_factory=dict)

    def default_lr(self, family: Family) -> float:
        return self.encoder_lr if family == "encoder" else self.decoder_lr

    def storage(self, family: Family) -> Storage:
        return self.storage_by_family.get(family, "peft")


# --------------------------------------------------------------------------------------------
# apply functions


def _task_type(context: Context) -> str:
    return "SEQ_CLS" if context.family == "encoder" else "CAUSAL_LM"


def _lora_config(context: Context, settings: LoraSettings) -> Any:
    from peft import LoraConfig

    targets = list(settings.targets or default_lora_targets(context.family, context.model_type))
    return LoraConfig(
        task_type=_task_type(context),
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=targets,
        fan_in_fan_out=context.model_type == "gpt2",
        # peft trains (and saves) an encoder's 3-class head itself (SEQ_CLS adds `classifier` /
        # `score`); decoders keep the base's own LM head: vLLM cannot load one that replaces it.
        modules_to_save=None,
    )


def apply_lora(model: nn.Module, context: Context, settings: LoraSettings) -> nn.Module:
    from peft import get_peft_model

    try:
        return get_peft_model(model, _lora_config(context, settings))
    except ValueError as error:
        raise UserError(f"LoRA: {error} (set training.lora_targets / --targets)") from None


def apply_qlora(model: nn.Module, context: Context, settings: LoraSettings) -> nn.Module:
    from peft import prepare_model_for_kbit_training

    if not is_quantized(model):
        raise UserError("QLoRA needs the base loaded in 4 bits (internal error: it was not)")
    # Norms and the head in fp32, input gradients on; no gradient checkpointing on CPU.
    prepared = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    keep_training_layout(prepared)
    return apply_lora(prepared, context, settings)


def keep_training_layout(model: nn.Module) -> None:
    """Stop bitsandbytes from repacking 4-bit weights into its CPU inference layout.

    On CPUs with AVX512-BF16, a 4-bit layer run in eval mode converts its weights in place to a
    layout only the inference kernel reads; training after a validation pass then fails, and the
    kernel's rounding differs from the training path's. Keeping one layout means validation,
    training and a reloaded model all compute the same numbers.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.__dict__["support_avx512bf16_for_cpu"] = False


def apply_prefix(model: nn.Module, context: Context, settings: PrefixSettings) -> nn.Module:
    if context.family == "encoder":
        from training.prefix import PrefixEncoderModel

        _freeze(model)
        train_head_copies(model)
        wrapped = PrefixEncoderModel(model, settings.tokens, settings.projection, settings.hidden)
        _unfreeze_head(model)
        return wrapped
    from peft import PrefixTuningConfig, get_peft_model

    config = PrefixTuningConfig(
        task_type="CAUSAL_LM",
        num_virtual_tokens=settings.tokens,
        prefix_projection=settings.projection,
        encoder_hidden_size=settings.hidden,
    )
    return get_peft_model(model, config)


def apply_prompt(model: nn.Module, context: Context, settings: PromptSettings) -> nn.Module:
    from peft import PromptTuningConfig, get_peft_model

    config = PromptTuningConfig(
        task_type=_task_type(context),
        num_virtual_tokens=settings.tokens,
        modules_to_save=list(HEAD_COPIES) if context.family == "encoder" else None,
    )
    return get_peft_model(model, config)


def apply_adapter(model: nn.Module, context: Context, settings: AdapterSettings) -> nn.Module:
    from training.bottleneck import AdapterModel

    _freeze(model)
    if context.family == "encoder":
        train_head_copies(model)
    targets = settings.targets or default_adapter_targets(context.model_type)
    wrapped = AdapterModel(model, targets, settings.size)
    _unfreeze_head(model)
    return wrapped


def apply_full(model: nn.Module, context: Context, settings: FullSettings) -> nn.Module:
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


class TrainedCopy(nn.Module):
    """A trainable copy of one of the base's modules; the original is kept untouched beside it
    (the layout and names of peft's modules_to_save, so tools that know one know the other)."""

    def __init__(self, original: nn.Module) -> None:
        super().__init__()
        self.original_module = original
        self.modules_to_save = copy.deepcopy(original)
        self.original_module.requires_grad_(False)
        self.modules_to_save.requires_grad_(True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.modules_to_save(*args, **kwargs)


def train_head_copies(model: nn.Module) -> None:
    """Swap each `HEAD_COPIES` module of an encoder (e.g. `bert.pooler`) for a `TrainedCopy`."""
    for name, module in list(model.named_modules()):
        last = name.rsplit(".", 1)[-1]
        if last in HEAD_COPIES and module is not None and not isinstance(module, TrainedCopy):
            parent = model.get_submodule(name.rsplit(".", 1)[0]) if "." in name else model
            setattr(parent, last, TrainedCopy(module))


def _freeze(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)


def _unfreeze_head(model: nn.Module) -> None:
    """The freshly initialised 3-class head of an encoder is trained with any method."""
    for name, parameter in model.named_parameters():
        if name.split(".")[0] in HEAD_NAMES:
            parameter.requires_grad_(True)


def is_quantized(model: nn.Module) -> bool:
    return any(type(p).__name__ == "Params4bit" for p in model.parameters())


METHODS: dict[str, Method] = {
    "lora": Method(
        "lora",
        "low-rank updates of the chosen projections (peft)",
        LoraSettings,
        lambda c: LoraSettings(c.lora_r, c.lora_alpha, c.lora_dropout, tuple(c.lora_targets)),
        apply_lora,
        encoder_lr=1e-3,
        decoder_lr=2e-4,
        mergeable=True,
    ),
    "qlora": Method(
        "qlora",
        "LoRA over a 4-bit NF4 base with double quantisation (bitsandbytes + peft)",
        LoraSettings,
        lambda c: LoraSettings(c.lora_r, c.lora_alpha, c.lora_dropout, tuple(c.lora_targets)),
        apply_qlora,
        encoder_lr=1e-3,
        decoder_lr=2e-4,
        quantized=True,
        mergeable=True,
    ),
    "prefix": Method(
        "prefix",
        "learned key/value prefixes in every attention layer",
        PrefixSettings,
        lambda c: PrefixSettings(c.prefix_tokens, c.prefix_projection, c.prefix_hidden),
        apply_prefix,
        encoder_lr=1e-2,
        decoder_lr=1e-2,
        storage_by_family={"encoder": "lorabot", "decoder": "peft"},
    ),
    "prompt": Method(
        "prompt",
        "learned virtual input tokens (peft prompt-tuning)",
        PromptSettings,
        lambda c: PromptSettings(c.prompt_tokens),
        apply_prompt,
        encoder_lr=3e-2,
        decoder_lr=3e-2,
    ),
    "adapter": Method(
        "adapter",
        "bottleneck adapters after attention and feed-forward (Houlsby)",
        AdapterSettings,
        lambda c: AdapterSettings(c.adapter_size, tuple(c.adapter_targets)),
        apply_adapter,
        encoder_lr=5e-3,
        decoder_lr=1e-3,
        storage_by_family={"encoder": "lorabot", "decoder": "lorabot"},
    ),
    "full": Method(
        "full",
        "every weight trained (the baseline)",
        FullSettings,
        lambda c: FullSettings(),
        apply_full,
        encoder_lr=5e-5,
        decoder_lr=2e-5,
        storage_by_family={"encoder": "full", "decoder": "full"},
    ),
}


def get_method(name: str) -> Method:
    try:
        return METHODS[name]
    except KeyError:
        raise UserError(f"unknown method {name!r}: use one of {', '.join(METHODS)}") from None


def settings_to_dict(settings: Any) -> dict[str, Any]:
    data = asdict(settings)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def settings_from_dict(method: Method, data: dict[str, Any]) -> Any:
    known = {f.name for f in fields(method.settings_type)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in known}
    return method.settings_type(**values)


# --------------------------------------------------------------------------------------------
# Saving and restoring what a method trained


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {
        name: parameter.detach().to("cpu").contiguous().clone()
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    parameters = dict(model.named_parameters())
    missing = [name for name in state if name not in parameters]
    if missing:
        raise UserError(f"saved weights do not fit this model (e.g. {missing[0]})")
    with torch.no_grad():
        for name, tensor in state.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))


def save_own(model: nn.Module, folder: Path, method: MethodName, settings: dict[str, Any]) -> None:
    """The lorabot format: the method's settings and every trained tensor (adapter and head)."""
    folder.mkdir(parents=True, exist_ok=True)
    state = trainable_state(model)
    save_file(state, str(folder / OWN_WEIGHTS), metadata={"method": method})
    resolved = {**settings}
    describe = getattr(model, "settings", None)
    if callable(describe):
        resolved.update(describe())
    (folder / OWN_CONFIG).write_text(
        json.dumps({"method": method, "settings": resolved}, indent=2) + "\n", encoding="utf-8"
    )


def restore_own(model: nn.Module, folder: Path) -> None:
    path = folder / OWN_WEIGHTS
    if not path.is_file():
        raise UserError(f"{folder}: no {OWN_WEIGHTS}")
    state = load_file(str(path))
    parameters = dict(model.named_parameters())
    unknown = [name for name in state if name not in parameters]
    if unknown:
        raise UserError(f"{path}: weights do not fit the base model (e.g. {unknown[0]})")
    with torch.no_grad():
        for name, tensor in state.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))


def own_settings(folder: Path) -> dict[str, Any]:
    path = folder / OWN_CONFIG
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{path}: cannot read: {error}") from None
    settings = data.get("settings", {})
    return settings if isinstance(settings, dict) else {}
