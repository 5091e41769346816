"""The embedded backend's synchronous forward pass, in the fastest form that holds accuracy.

Why each choice (figures in bench/RESULTS.md):
- the LoRA adapter is merged into the base weights (see `loading`), so a layer is one matmul;
- texts are tokenized once, sorted by length and cut into batches of similar length, so padding
  (tweets: 28 tokens mean, 79 max) costs almost nothing; answers go back in the caller's order;
- `precision = "bf16"` casts the weights to bfloat16, which CPUs with AVX-512 BF16 / AMX run
  natively through oneDNN (autocast would cast per op and is slower); `"int8"` is dynamic
  int8 quantisation of the linear layers; `"fp32"` is exact; `"auto"` picks bf16 where the CPU
  has native bf16 and fp32 elsewhere;
- `torch.inference_mode`, a thread count from config, and one warm-up pass at load so that the
  first real request does not pay for kernel selection.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from adapters.model.loading import LoadedModel
from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template

if TYPE_CHECKING:
    import torch

Precision = Literal["auto", "fp32", "bf16", "int8"]
Probs = tuple[float, float, float]
_HEADS = ("classifier", "score", "lm_head")


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX-BF16: bf16 matmuls run in hardware, not emulated."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool({"avx512_bf16", "amx_bf16"} & flags)
    except OSError:
        pass
    return False


def resolve_precision(precision: Precision) -> Literal["fp32", "bf16", "int8"]:
    if precision == "auto":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return precision


@dataclass(frozen=True)
class InferenceOptions:
    precision: Precision = "auto"
    batch_size: int = 64
    max_length: int = 0  # 0: the manifest's
    num_threads: int = 0  # 0: torch's default
    sort_by_length: bool = True


class Scorer:
    """Class probabilities for texts, in their order; one instance per loaded model."""

    def __init__(self, loaded: LoadedModel, options: InferenceOptions) -> None:
        import torch

        if options.num_threads > 0:
            torch.set_num_threads(options.num_threads)
        self.loaded = loaded
        self.options = options
        self.precision = resolve_precision(options.precision)
        self.max_length = options.max_length or loaded.manifest.max_length
        self.family = loaded.manifest.family
        self.tokenizer = loaded.tokenizer
        self.model = _apply_precision(loaded.model, self.precision)
        if self.family == "decoder":
            self.template = prompt_template(loaded.manifest)
            self.label_ids = list(label_token_ids(self.tokenizer, loaded.manifest))
        self.pad_id = int(self.tokenizer.pad_token_id or 0)

    @property
    def variant(self) -> str:
        """What changes answers: part of the model id (sorting and batch size do not)."""
        merged = "merged" if self.loaded.merged else "unmerged"
        return f"{self.precision}-{merged}-len{self.max_length}"

    def warm_up(self) -> None:
        self.probs(["Warm-up headline: markets open flat ahead of the data."])

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self.family == "decoder":
            return prompt_ids(self.tokenizer, self.template, texts, self.max_length)
        encoded = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, add_special_tokens=True
        )
        return [list(ids) for ids in encoded["input_ids"]]

    def probs(self, texts: Sequence[str]) -> list[Probs]:
        if not texts:
            return []
        import torch

        ids = self.encode(texts)
        order = list(range(len(ids)))
        if self.options.sort_by_length:
            order.sort(key=lambda i: len(ids[i]))
        out: list[Probs | None] = [None] * len(ids)
        size = self.options.batch_size
        with torch.inference_mode():
            for start in range(0, len(order), size):
                chunk = order[start : start + size]
                result = self._forward([ids[i] for i in chunk])
                for row, index in zip(result, chunk, strict=True):
                    out[index] = (row[0], row[1], row[2])
        return [p for p in out if p is not None]

    def _forward(self, batch: list[list[int]]) -> list[list[float]]:
        import torch

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask[row, : len(ids)] = 1
        if self.family == "encoder":
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits.float()
        else:
            logits = self._label_logits(input_ids, mask)
        result: list[list[float]] = logits.softmax(dim=-1).tolist()
        return result

    def _label_logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits of the three label words at each prompt's last real token (right padding)."""
        import torch

        logits = self.model(input_ids=input_ids, attention_mask=mask).logits
        offset = logits.shape[1] - input_ids.shape[1]  # prompt tuning prepends virtual tokens
        last = mask.sum(dim=1) - 1 + offset
        rows = torch.arange(input_ids.shape[0])
        return logits[rows, last][:, self.label_ids].float()


def _apply_precision(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    import torch

    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        from torch.ao.quantization import quantize_dynamic

        keep = {name for name, _ in model.named_modules() if name.split(".")[-1] in _HEADS}
        linear_names = {
            name
            for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name not in keep
        }
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the torch.ao -> torchao migration notice
            return quantize_dynamic(model, linear_names, dtype=torch.qint8)
    return model
