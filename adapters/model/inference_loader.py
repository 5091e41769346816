"""Load a `lorabot train` / `lorabot export` folder for serving, the LoRA merged without peft.

A folder holds either a PEFT adapter over a base model (`kind = "adapter"`) or a complete model
(`"merged"`, `"full"`); its `lorabot.json` says which, and which family (encoder classifier or
decoder read through label words). For inference a LoRA adapter is folded into the base weights
(`W + scale * B @ A`), which removes the adapter's extra matmuls from every layer. That merge is
done here straight from `adapter_model.safetensors` rather than through peft, because importing
peft costs several seconds (it pulls bitsandbytes and more) and a cold `lorabot classify` pays it
on every run; anything the direct merge does not cover exactly (DoRA, per-module rank/alpha
patterns, bias training, embedding LoRA, prefix/prompt tuning, bottleneck adapters, QLoRA, or
`merge = false`) is loaded by the fine-tuning toolkit (`training.classifier.restore_model`), through
peft where peft has the method; its forward pass is the reference the tests compare with.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import UserError
from bot.manifest import Manifest, missing_model, read_manifest, resolve_base

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "tokenizer.model")


class ModelLoadError(UserError):
    pass


@dataclass
class LoadedModel:
    """A model ready to run: the torch module, its tokenizer and what its folder says."""

    folder: Path
    manifest: Manifest
    model: PreTrainedModel  # or compact_bert's classifier, which has the same call and names
    tokenizer: Any  # a transformers tokenizer, or compact_bert's for its classifiers
    base: str  # the resolved base-model folder (or hub id) the weights started from
    merged: bool  # True when the adapter was folded into the weights (or there was none)


def quiet_transformers() -> None:
    """Loading reports ("classifier MISSING" before the adapter supplies it) are noise here."""
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("peft").setLevel(logging.ERROR)


def base_reference(manifest: Manifest, folder: Path, override: str = "") -> str:
    """The base model an adapter folder needs: `[model] base` if set, else the manifest's."""
    reference = override or manifest.base_model
    if manifest.kind != "adapter":
        return str(folder)
    resolved = resolve_base(reference)
    if not Path(resolved).exists():
        raise ModelLoadError(
            f"{folder}: base model {reference!r} is not a local folder (nothing is downloaded "
            "at run time); set [model] base to the base model's folder"
        )
    return resolved


def load_model(
    folder: str | Path, base_override: str = "", merge: bool = True, compact: bool = True
) -> LoadedModel:
    """Load `folder` (see the module docstring) in fp32, eval mode, gradients off.

    `compact`: a BERT classifier that `compact_bert` computes exactly runs without transformers
    (seconds less to start); False always loads through transformers."""
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise ModelLoadError(missing_model(path))
    manifest = read_manifest(path)
    base = base_reference(manifest, path, base_override)
    if compact and merge:
        loaded = _load_compact(manifest, path, base)
        if loaded is not None:
            return loaded
    quiet_transformers()
    tokenizer = _load_tokenizer(path, base)
    if manifest.kind == "adapter":
        model = None
        merged = False
        if merge and manifest.method == "lora" and _direct_merge_possible(path):
            model = _load_base(manifest, base)
            merged = _merge_lora_directly(model, path)
            if not merged:
                model = None
        if model is None:
            model = _restore_adapter(manifest, path, base, dequantize=merge)
            lora = manifest.method in ("lora", "qlora")
            if merge and lora and hasattr(model, "merge_and_unload"):
                model = model.merge_and_unload()
                merged = True
    else:
        model = _load_base(manifest, str(path))
        merged = True
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    if tokenizer.pad_token_id is None:
        # Decoders often ship without a pad token; padding is masked, any id will do.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return LoadedModel(path, manifest, model, tokenizer, base, merged)


@dataclass(frozen=True)
class CompactSource:
    """Where `compact_bert` reads a model it computes exactly: the BERT weights and tokenizer."""

    weights: Path  # the folder of config.json + model.safetensors (the base for an adapter)
    tokenizer: Path  # the folder of tokenizer.json


def compact_source(manifest: Manifest, folder: Path, base: str) -> CompactSource | None:
    """The folders `compact_bert` loads this model from, or None where it is not known to be
    exact; file checks only (no torch), so a caller can choose a runtime before loading."""
    from adapters.model import compact_bert

    if manifest.family != "encoder":
        return None
    if manifest.kind == "adapter":
        if manifest.method != "lora" or not _direct_merge_possible(folder):
            return None
        source = Path(base)
        head = {f"base_model.model.classifier.{p}" for p in ("weight", "bias")}
        has_head = head <= safetensors_names(folder / ADAPTER_WEIGHTS)
    else:
        source = folder
        has_head = {"classifier.weight", "classifier.bias"} <= {
            compact_bert.canonical(k) for k in safetensors_names(source / compact_bert.WEIGHTS)
        }
    has_tokenizer_files = any((folder / name).is_file() for name in TOKENIZER_FILES)
    tokenizer_folder = folder if has_tokenizer_files else source
    config = compact_bert.read_config(source)
    if (
        not has_head
        or config is None
        or not compact_bert.supported_config(config)
        or not (source / compact_bert.WEIGHTS).is_file()
        or not (tokenizer_folder / compact_bert.TOKENIZER).is_file()
    ):
        return None
    return CompactSource(source, tokenizer_folder)


def _load_compact(manifest: Manifest, folder: Path, base: str) -> LoadedModel | None:
    """The transformers-free BERT where it is exact (see `compact_bert`); None: load as usual."""
    from adapters.model import compact_bert

    where = compact_source(manifest, folder, base)
    if where is None:
        return None
    try:
        model, tokenizer = compact_bert.load(where.weights, where.tokenizer)
    except (KeyError, ValueError, OSError, RuntimeError):
        return None  # whatever it cannot read exactly, transformers loads
    if manifest.kind == "adapter" and not _merge_lora_directly(model, folder):
        return None
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return LoadedModel(folder, manifest, model, tokenizer, base, True)


def load_compact_model(folder: Path, base_override: str = "") -> LoadedModel | None:
    """`folder` merged into `compact_bert`'s classifier, or None where that is not exact."""
    manifest = read_manifest(folder)
    return _load_compact(manifest, folder, base_reference(manifest, folder, base_override))


def safetensors_names(path: Path) -> set[str]:
    """The tensor names of a safetensors file, read from its JSON header (safetensors' own
    `safe_open(..., "pt")` imports torch, which the ONNX path never needs)."""
    if not path.is_file():
        return set()
    try:
        with path.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
    except (OSError, ValueError):
        return set()
    if not isinstance(header, dict):
        return set()
    return {name for name in header if name != "__metadata__"}


def _load_tokenizer(folder: Path, base: str) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    source = folder if any((folder / name).is_file() for name in TOKENIZER_FILES) else Path(base)
    try:
        return AutoTokenizer.from_pretrained(str(source))
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{source}: cannot load a tokenizer: {error}") from None


def _load_base(manifest: Manifest, source: str) -> PreTrainedModel:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    labels = {i: name for i, name in enumerate(manifest.labels)}
    try:
        if manifest.family == "encoder":
            model = AutoModelForSequenceClassification.from_pretrained(
                source,
                num_labels=3,
                id2label=labels,
                label2id={v: k for k, v in labels.items()},
                torch_dtype="float32",
            )
        else:
            model = AutoModelForCausalLM.from_pretrained(source, torch_dtype="float32")
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{source}: cannot load the model: {error}") from None
    return model


def _restore_adapter(manifest: Manifest, folder: Path, base: str, dequantize: bool) -> Any:
    """Every adapter the direct merge does not cover, loaded the way it was trained: the
    fine-tuning toolkit's `restore_model` knows each method (peft's, its own bottleneck adapter,
    a QLoRA adapter over the 4-bit base, or dequantised for merging)."""
    import warnings

    from training.classifier import restore_model

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        model, _, _ = restore_model(manifest, folder, base=base, dequantize=dequantize)
    return model


def lora_config(folder: Path) -> dict[str, Any]:
    path = folder / ADAPTER_CONFIG
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ModelLoadError(f"{folder}: no {ADAPTER_CONFIG} (not a PEFT adapter folder)") from None
    except ValueError as error:
        raise ModelLoadError(f"{path}: invalid JSON: {error}") from None


def _direct_merge_supported(config: dict[str, Any]) -> bool:
    return (
        config.get("peft_type") == "LORA"
        and not config.get("use_dora")
        and not config.get("rank_pattern")
        and not config.get("alpha_pattern")
        and config.get("bias", "none") == "none"
        and not config.get("lora_bias")
        and not config.get("fan_in_fan_out")
        and not config.get("layer_replication")
        and not config.get("trainable_token_indices")
        and not config.get("target_parameters")
    )


def _direct_merge_possible(folder: Path) -> bool:
    return (folder / ADAPTER_WEIGHTS).is_file() and _direct_merge_supported(lora_config(folder))


def _merge_lora_directly(model: PreTrainedModel, folder: Path) -> bool:
    """Fold a plain LoRA adapter into `model` in place; False (model untouched) if unsupported."""
    import torch
    from safetensors.torch import load_file

    config = lora_config(folder)
    weights_path = folder / ADAPTER_WEIGHTS
    if not _direct_merge_supported(config) or not weights_path.is_file():
        return False
    state = load_file(str(weights_path))
    prefix = "base_model.model."
    pairs: dict[str, dict[str, torch.Tensor]] = {}
    replaced: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if not key.startswith(prefix):
            return False
        name = key[len(prefix) :]
        for part in ("lora_A", "lora_B"):
            marker = f".{part}."
            if marker in name:
                module, _, tail = name.partition(marker)
                if tail != "weight":
                    return False
                pairs.setdefault(module, {})[part] = tensor
                break
        else:
            if "lora_embedding" in name or "lora_magnitude" in name:
                return False
            replaced[name] = tensor
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    for module_name, pair in pairs.items():
        layer = modules.get(module_name)
        if not isinstance(layer, torch.nn.Linear) or set(pair) != {"lora_A", "lora_B"}:
            return False
        rank = pair["lora_A"].shape[0]
        if pair["lora_B"].shape != (layer.out_features, rank):
            return False
    for name, tensor in replaced.items():
        if name not in parameters or parameters[name].shape != tensor.shape:
            return False
    alpha = float(config.get("lora_alpha", 8))
    with torch.no_grad():
        for module_name, pair in pairs.items():
            layer = modules[module_name]
            rank = pair["lora_A"].shape[0]
            scale = alpha / math.sqrt(rank) if config.get("use_rslora") else alpha / rank
            delta = (pair["lora_B"].float() @ pair["lora_A"].float()) * scale
            layer.weight.add_(delta.to(layer.weight.dtype))
        for name, tensor in replaced.items():
            parameters[name].copy_(tensor.to(parameters[name].dtype))
    return True


def lora_rank(folder: Path) -> int:
    """The largest LoRA rank in an adapter folder (vLLM needs `--max-lora-rank` at least this)."""
    config = lora_config(folder)
    ranks = [
        int(config.get("r", 8)),
        *(int(v) for v in (config.get("rank_pattern") or {}).values()),
    ]
    return max(ranks)
