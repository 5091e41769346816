"""The reference classifier: a lorabot model folder loaded through peft, asked for probabilities.

Used by `lorabot eval`, `compare` and the training loop's own validation, and by the serving
layer (`adapters.model.inference_loader`) for whatever its direct LoRA merge does not cover, so
every consumer reads a folder the same way: a PEFT or lorabot adapter
over its base (re-quantised to 4 bits when it was trained as QLoRA, so it predicts exactly what it
did in training), a merged model, or a fully fine-tuned one. Probabilities are always in the project
label order (bearish, neutral, bullish).

Importing this module is cheap and has no side effects: torch, transformers and peft are imported
when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import UserError
from bot.manifest import (
    Manifest,
    folder_digest,
    model_folder,
    read_manifest,
)

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

    from bot.protocols import Prediction
    from training.families import Family, PromptSpec

__all__ = ["SentimentClassifier", "load_model", "restore_model"]


@dataclass
class SentimentClassifier:
    """A loaded model that maps texts to (bearish, neutral, bullish) probabilities."""

    model: nn.Module
    tokenizer: Any
    family: Family
    max_length: int = 64
    prompt: PromptSpec | None = None
    manifest: Manifest | None = None
    folder: Path | None = None
    batch_size: int = 32

    @property
    def model_id(self) -> str:
        """Changes whenever the answers could: the folder's content hash (or the class name).
        Computed once: a loaded model does not change under its user."""
        cached = self.__dict__.get("_model_id")
        if cached is None:
            if self.folder is not None:
                method = self.manifest.method if self.manifest else "model"
                cached = f"{method}:{folder_digest(self.folder)}"
            else:
                cached = f"memory:{type(self.model).__name__}"
            self.__dict__["_model_id"] = cached
        return str(cached)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        from training.families import encode_texts

        template = self.prompt.template if self.prompt else None
        return encode_texts(self.tokenizer, texts, self.family, self.max_length, template)

    @property
    def temperature(self) -> float:
        """The calibration temperature of the manifest (1: uncalibrated)."""
        return self.manifest.temperature if self.manifest else 1.0

    def predict_proba(
        self, texts: Sequence[str], batch_size: int | None = None, *, calibrated: bool = True
    ) -> np.ndarray:
        """An (N, 3) float64 array of class probabilities, rows in the order of `texts`, with
        the manifest's temperature applied unless `calibrated` is False."""
        import numpy as np

        if not texts:
            return np.zeros((0, 3))
        return self.proba_from_ids(self.encode(texts), batch_size, calibrated=calibrated)

    def proba_from_ids(
        self,
        rows: Sequence[Sequence[int]],
        batch_size: int | None = None,
        *,
        calibrated: bool = True,
    ) -> np.ndarray:
        import numpy as np
        import torch

        from training.families import collate, label_logits

        size = batch_size or self.batch_size
        # Similar lengths together: less padding, and the order is restored at the end.
        order = sorted(range(len(rows)), key=lambda i: len(rows[i]))
        out = np.zeros((len(rows), 3), dtype=np.float64)
        token_ids = self.prompt.token_ids if self.prompt else None
        temperature = self.temperature if calibrated else 1.0
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(order), size):
                    chunk = order[start : start + size]
                    batch = collate([rows[i] for i in chunk], self.tokenizer.pad_token_id or 0)
                    logits, _ = label_logits(self.model, batch, self.family, token_ids)
                    out[chunk] = torch.softmax(logits.double() / temperature, dim=-1).cpu().numpy()
        finally:
            self.model.train(was_training)
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        from bot.protocols import Prediction

        model_id = self.model_id
        return [Prediction.from_probs(list(p), model_id) for p in self.predict_proba(texts)]


def load_model(
    folder: str | Path | None = None,
    *,
    base: str | None = None,
    num_threads: int = 0,
    batch_size: int = 32,
) -> SentimentClassifier:
    """Load a model folder (default: the committed default adapter) for prediction.

    `base` overrides the manifest's base model (e.g. a local copy of a hub model).
    """
    if num_threads:
        import torch

        torch.set_num_threads(num_threads)
    path = model_folder(folder)
    manifest = read_manifest(path)
    model, tokenizer, prompt = restore_model(manifest, path, base=base)
    model.eval()
    return SentimentClassifier(
        model=model,
        tokenizer=tokenizer,
        family=manifest.family,
        max_length=manifest.max_length,
        prompt=prompt,
        manifest=manifest,
        folder=path,
        batch_size=batch_size,
    )


def restore_model(
    manifest: Manifest, folder: Path, *, base: str | None = None, dequantize: bool = False
) -> tuple[nn.Module, Any, PromptSpec | None]:
    """(model, tokenizer, prompt) for a folder described by `manifest`.

    `dequantize` loads a QLoRA adapter over the base's dequantised NF4 weights in fp32 (what the
    adapter was trained against) instead of the 4-bit base: the form a merge starts from.
    """
    from training.families import PromptSpec, check_template, label_token_ids

    if manifest.kind in ("merged", "full"):
        model, tokenizer = _load_complete(folder, manifest.family)
    else:
        model, tokenizer = _load_adapter(manifest, folder, base, dequantize)
    prompt = None
    if manifest.family == "decoder":
        words = manifest.label_words
        template = manifest.prompt
        if words is None or template is None:
            raise UserError(f"{folder}: a decoder manifest needs label_words and prompt")
        ids = label_token_ids(tokenizer, check_template(template), words)
        if manifest.label_token_ids is not None and tuple(manifest.label_token_ids) != ids:
            raise UserError(
                f"{folder}: the tokenizer spells the label words as tokens {list(ids)}, but the "
                f"model was trained on {list(manifest.label_token_ids)}: wrong tokenizer/base?"
            )
        prompt = PromptSpec(template, (words[0], words[1], words[2]), ids)
    return model, tokenizer, prompt


def _load_complete(folder: Path, family: str) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

    from training.base_model import load_tokenizer

    loader = AutoModelForSequenceClassification if family == "encoder" else AutoModelForCausalLM
    try:
        model = loader.from_pretrained(str(folder))
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: cannot load the model: {error}") from None
    if family == "encoder" and model.config.num_labels != 3:
        raise UserError(f"{folder}: expected a 3-class head, found {model.config.num_labels}")
    return model, load_tokenizer(str(folder), family)  # type: ignore[arg-type]


def _load_adapter(
    manifest: Manifest, folder: Path, base_override: str | None, dequantize: bool
) -> tuple[nn.Module, Any]:
    from training.base_model import dequantized_base, load_base
    from training.methods import (
        Context,
        get_method,
        own_settings,
        restore_own,
        settings_from_dict,
    )

    method = get_method(manifest.method)
    reference = base_override or manifest.base_model
    quantized = manifest.quantization == "nf4"
    if quantized and dequantize:
        base = dequantized_base(reference, manifest.family)
    else:
        base = load_base(reference, manifest.family, quantize=quantized)
        if quantized:
            from training.methods import keep_training_layout

            keep_training_layout(base.model)
    storage = method.storage(manifest.family)
    if storage == "peft":
        from peft import PeftModel

        if not (folder / "adapter_config.json").is_file():
            raise UserError(f"{folder}: no adapter_config.json (incomplete PEFT adapter folder)")
        model: nn.Module = PeftModel.from_pretrained(base.model, str(folder))
    elif storage == "lorabot":
        saved = manifest.method_config or own_settings(folder)
        settings = settings_from_dict(method, saved)
        model = method.apply(base.model, Context(base.family, base.model_type), settings)
        restore_own(model, folder)
    else:
        raise UserError(f"{folder}: a {manifest.method} folder must be kind 'full'")
    return model, base.tokenizer
