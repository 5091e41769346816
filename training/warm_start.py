"""Starting a run from another trained model's weights (`lorabot train --init-from FOLDER`).

Teaching the shipped model a new domain (crypto events) need not relearn the old one (stock
tweets) from nothing: a LoRA adapter trained on TFNS is loaded into the fresh model and training
continues on the new mix (with some of the old data in it, so the old skill is kept). The
source must be a PEFT adapter of the same method and shape (rank, target modules) over the same
base. What the source learnt from is part of what the new model saw, so its training span and
undated sets carry over into the new manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from bot.errors import UserError
from bot.manifest import ManifestError, read_manifest
from training.distill import source_record


def warm_start(model: nn.Module, method: str, folder: Path) -> dict[str, Any]:
    """Load `folder`'s adapter (and head) into `model`; returns what the manifest records."""
    try:
        source = read_manifest(folder)
    except ManifestError as error:
        raise UserError(f"--init-from: {error}") from None
    weights = folder / "adapter_model.safetensors"
    if source.kind != "adapter" or source.method != method or not weights.is_file():
        raise UserError(
            f"--init-from {folder}: a {source.kind} {source.method} model; only a PEFT adapter "
            f"of the same method ({method}) can seed this run"
        )
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    try:
        result = set_peft_model_state_dict(model, load_file(str(weights)))
    except RuntimeError as error:
        first = str(error).strip().splitlines()[-1].strip()
        raise UserError(
            f"--init-from {folder}: its weights do not fit this model (rank or target modules "
            f"differ: {first})"
        ) from None
    unexpected = list(getattr(result, "unexpected_keys", []) or [])
    if unexpected:
        raise UserError(
            f"--init-from {folder}: its weights do not fit this model (e.g. {unexpected[0]})"
        )
    return source_record(folder, source)
