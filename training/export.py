"""Export a trained model folder for the serving layer.

vLLM serves two things: LoRA adapters over a decoder base (`--lora-modules name=DIR`), and complete
models. So a decoder LoRA/QLoRA adapter is exported as the PEFT folder it is (no modules_to_save:
the base's own LM head is used); anything else vLLM should serve is merged into its base first
and written as a standard Hugging Face folder (fp32 by default, tokenizer included, id2label in
the project order). A QLoRA adapter is merged into the dequantised NF4 weights it was trained
against. Prefix, prompt and bottleneck adapters cannot be folded into the weights: they run on
the embedded backend, and exporting them for vLLM says so.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.errors import UserError
from bot.log import get_logger
from bot.manifest import MANIFEST_NAME, Manifest, read_manifest, write_manifest
from training.methods import OWN_CONFIG, OWN_WEIGHTS, get_method

log = get_logger(__name__)

PEFT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def embedded_only(manifest: Manifest, folder: Path) -> UserError:
    return UserError(
        f"a {manifest.method} model cannot be merged into its base weights, so vLLM cannot serve "
        f'it; it runs on the embedded backend: set [model] backend = "embedded" and '
        f'path = "{folder}" (or export it with --target embedded)'
    )


def export_model(
    model_dir: Path,
    out: Path,
    *,
    merge: bool = False,
    target: str = "vllm",
    dtype: str = "float32",
    base: str | None = None,
    overwrite: bool = False,
    force: bool = False,
    command: str = "",
    echo: Callable[[str], None] | None = None,
) -> Manifest:
    """Write `model_dir` as `target` loads it into `out`; see the module docstring for what.

    An encoder LoRA adapter for vLLM is merged (vLLM serves an encoder only as a complete
    model), with one line through `echo` saying so. A model that predicted a single class on
    validation is refused unless `force`: it would trade on no signal at all.
    """
    say = echo or (lambda message: log.info(message))
    manifest = read_manifest(model_dir)
    method = get_method(manifest.method)
    _refuse_single_class(manifest, model_dir, force)
    if (
        target == "vllm"
        and not merge
        and manifest.kind == "adapter"
        and manifest.family == "encoder"
        and method.mergeable
    ):
        say(
            "export: vLLM serves an encoder classifier as a complete model, so the adapter is "
            "merged into its base (as with --merge; --target embedded keeps the adapter)"
        )
        merge = True
    _prepare(model_dir, out, overwrite)
    complete = manifest.kind in ("merged", "full")
    if complete:
        return _write_complete(manifest, model_dir, out, dtype, command)
    if merge:
        if not method.mergeable:
            raise embedded_only(manifest, model_dir)
        return _write_merged(manifest, model_dir, out, dtype, base, command)
    if target == "embedded":
        return _copy_adapter(manifest, model_dir, out, command)
    if manifest.method not in ("lora", "qlora"):
        raise embedded_only(manifest, model_dir)
    return _copy_adapter(manifest, model_dir, out, command, for_vllm=True)


def _refuse_single_class(manifest: Manifest, model_dir: Path, force: bool) -> None:
    predicted = str(manifest.eval.get("valid_predicted", ""))
    if predicted and "," not in predicted and not force:
        raise UserError(
            f"{model_dir}: the model predicted only {predicted} on validation (it has learnt "
            "no signal); retrain it (more data, epochs or another learning rate), or pass "
            "--force to export it anyway"
        )


def _prepare(model_dir: Path, out: Path, overwrite: bool) -> None:
    if out.resolve() == model_dir.resolve():
        raise UserError("--out must be another folder than --model")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"{out}: not empty; pass --overwrite to replace its contents")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _derived(manifest: Manifest, **changes: Any) -> Manifest:
    data = manifest.model_dump()
    data.update(changes)
    return Manifest.model_validate(data)


def _copy_adapter(
    manifest: Manifest, model_dir: Path, out: Path, command: str, *, for_vllm: bool = False
) -> Manifest:
    storage = get_method(manifest.method).storage(manifest.family)
    names = PEFT_FILES if storage == "peft" else (OWN_CONFIG, OWN_WEIGHTS)
    for name in names:
        source = model_dir / name
        if not source.is_file():
            raise UserError(f"{model_dir}: {name} is missing")
        shutil.copy2(source, out / name)
    if for_vllm:
        _check_vllm_adapter(out)
    for extra in ("eval.json", "README.md"):
        if (model_dir / extra).is_file():
            shutil.copy2(model_dir / extra, out / extra)
    exported = _derived(manifest, source=str(model_dir.resolve()), command=command)
    write_manifest(out, exported)
    return exported


def _check_vllm_adapter(folder: Path) -> None:
    """vLLM loads plain LoRA weights only: no replaced modules, no embedding or head layers."""
    config = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    if config.get("peft_type") != "LORA":
        raise UserError(f"{folder}: not a LoRA adapter ({config.get('peft_type')})")
    if config.get("modules_to_save"):
        raise UserError(
            f"{folder}: the adapter replaces whole modules {config['modules_to_save']}, "
            "which vLLM cannot load; export it with --merge"
        )


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def _write_merged(
    manifest: Manifest,
    model_dir: Path,
    out: Path,
    dtype: str,
    base: str | None,
    command: str,
) -> Manifest:
    from training.classifier import restore_model

    model, tokenizer, _ = restore_model(manifest, model_dir, base=base, dequantize=True)
    merge = getattr(model, "merge_and_unload", None)
    if merge is None:
        raise embedded_only(manifest, model_dir)
    merged = merge()
    _save_complete(merged, tokenizer, manifest.family, out, dtype)
    exported = _derived(
        manifest,
        kind="merged",
        dtype=dtype,
        quantization=None,
        source=str(model_dir.resolve()),
        command=command,
    )
    write_manifest(out, exported)
    _copy_extras(model_dir, out)
    return exported


def _write_complete(
    manifest: Manifest, model_dir: Path, out: Path, dtype: str, command: str
) -> Manifest:
    from training.classifier import restore_model

    model, tokenizer, _ = restore_model(manifest, model_dir)
    _save_complete(model, tokenizer, manifest.family, out, dtype)
    exported = _derived(manifest, dtype=dtype, source=str(model_dir.resolve()), command=command)
    write_manifest(out, exported)
    _copy_extras(model_dir, out)
    return exported


def _save_complete(model: Any, tokenizer: Any, family: str, out: Path, dtype: str) -> None:
    from training.families import id2label, label2id

    model = model.to(_torch_dtype(dtype))
    config = model.config
    if family == "encoder":
        config.id2label = id2label()
        config.label2id = label2id()
        config.num_labels = 3
    # A plain Hugging Face folder: no lorabot-only attention function, no quantisation left.
    if getattr(config, "_attn_implementation", None) not in (None, "eager", "sdpa"):
        model.set_attn_implementation("sdpa")
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    # Drop anything a library may have added that the serving side does not need.
    for stray in ("README.md",):
        if (out / stray).exists():
            (out / stray).unlink()
    if not (out / MANIFEST_NAME).exists():
        log.debug("saved complete model", folder=str(out))


def _copy_extras(model_dir: Path, out: Path) -> None:
    for extra in ("eval.json", "README.md"):
        if (model_dir / extra).is_file():
            shutil.copy2(model_dir / extra, out / extra)
