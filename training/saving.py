"""Writing a trained model in the form its method calls for.

PEFT methods write a standard PEFT adapter folder (what vLLM's `--lora-modules` and
`PeftModel.from_pretrained` read), with the base named portably (the hub id for the embedded
default, never this machine's path). The methods written here (bottleneck adapter, encoder
prefix) write `lorabot_adapter.json` + `.safetensors`. Full fine-tuning writes a complete model
with its tokenizer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from bot.manifest import Manifest
from training.base_model import Base
from training.methods import get_method, save_own


def save_trained(model: nn.Module, base: Base, manifest: Manifest, out: Path) -> None:
    method = get_method(manifest.method)
    storage = method.storage(manifest.family)
    out.mkdir(parents=True, exist_ok=True)
    if storage == "peft":
        card = out / "README.md"
        had_card = card.exists()
        model.save_pretrained(str(out))  # type: ignore[operator]
        if not had_card and card.exists():
            card.unlink()  # peft's empty template; training writes the real card
        set_adapter_base(out, manifest.base_model)
    elif storage == "lorabot":
        save_own(model, out, manifest.method, manifest.method_config)
    else:
        model.save_pretrained(str(out), safe_serialization=True)  # type: ignore[operator]
        base.tokenizer.save_pretrained(str(out))


def set_adapter_base(folder: Path, base_model: str) -> None:
    """Name the base in adapter_config.json as the manifest does (portable)."""
    path = folder / "adapter_config.json"
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
