"""The embedded backend's synchronous forward pass, in the fastest form that holds accuracy.

Why each choice (figures in bench/RESULTS.md):
- the LoRA adapter is merged into the base weights (`inference_loader`), so a layer is one matmul;
- texts are tokenized once, sorted by length and cut into batches of similar length, so padding
  (tweets: 28 tokens mean, 79 max) costs almost nothing; answers go back in the caller's order;
- `precision = "bf16"` casts the weights to bfloat16, which CPUs with AVX-512 BF16 / AMX run
  natively through oneDNN (autocast would cast per op and is slower); `"int8"` is dynamic
  int8 quantisation of the linear layers; `"fp32"` is exact; `"auto"` picks bf16 where the CPU
  has native bf16 and fp32 elsewhere;
- a long-running process (`EmbeddedModel.start()`, which the daemon calls) also builds a frozen
  TorchScript trace of an encoder (`trace = true`) for its small passes: the same kernels without
  the per-module Python of the eager model, which is most of a single headline's latency; the
  trace is checked against the eager model when built (any difference: eager it stays). Large
  batches stay eager (measured: no faster traced), and one-shot commands (`lorabot classify`, a
  backtest's prefetch) never pay the ~0.6 s the trace takes to build;
- OpenMP threads wait passively (`OMP_WAIT_POLICY=PASSIVE` unless set): on a machine whose cores
  are shared, spinning workers that get descheduled stall every op at the next barrier (measured
  here: 2 threads took 530 ms per headline instead of 8 while other processes ran);
- a small forward pass (under `SMALL_PASS_TOKENS` tokens, e.g. one headline) runs on one thread:
  its matmuls are too small to split, and waking a second thread per op costs more than it saves;
- `torch.inference_mode`, a thread count from config, and one warm-up pass at load so that the
  first real request does not pay for kernel selection.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from adapters.model.inference_loader import LoadedModel
from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template

if TYPE_CHECKING:
    import torch

# Read by libgomp when torch loads it: set before the first `import torch` (see the docstring).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

Precision = Literal["auto", "fp32", "bf16", "int8"]
Runtime = Literal["onnx", "torch"]
SMALL_PASS_TOKENS = 256
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


#: What a scorer's `warm_up` reads once, so the first real headline pays no first-call costs.
WARM_UP_TEXT = "Warm-up headline: markets open flat ahead of the data."


def encoder_ids(tokenizer: Any, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """An encoder's token ids for `texts`, unpadded: both scorers (torch here, ONNX Runtime in
    onnx_scorer.py) group rows by length themselves, and must read exactly the same ids."""
    encoded = tokenizer(
        list(texts), truncation=True, max_length=max_length, add_special_tokens=True
    )
    return [list(ids) for ids in encoded["input_ids"]]


@dataclass(frozen=True)
class InferenceOptions:
    precision: Precision = "auto"
    batch_size: int = 128
    max_length: int = 0  # 0: the manifest's
    num_threads: int = 0  # 0: torch's default
    sort_by_length: bool = True
    trace: bool = True  # encoders: small passes run a frozen TorchScript trace once prepared
    runtime: Runtime = "torch"  # "onnx": ONNX Runtime where the model allows (`onnx_graph`)


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
        # the calibration temperature fitted by `lorabot train`: logits are divided by it
        self.temperature = loaded.manifest.temperature
        self._graph: Any = None

    def prepare_graph(self) -> bool:
        """Build the traced graph for small passes (see the module docstring); True if in use."""
        if self._graph is None and self.options.trace and self.family == "encoder":
            self._graph = self._traced()
            if self._graph is not None:
                self.warm_up()
        return self.traced

    def _traced(self) -> Any:
        """The model as a frozen TorchScript graph, if it reproduces the eager model exactly."""
        import torch

        probes = [
            "Warm-up headline: markets open flat ahead of the data.",
            "Oil slips",
            "A much longer third probe so that the batch is padded: shares rally after results",
        ]
        rows = self.encode(probes)
        ids, mask = _padded(rows, self.pad_id)
        try:
            with warnings.catch_warnings(), torch.no_grad():
                warnings.simplefilter("ignore")  # tracer and torch.jit deprecation notices
                first = (ids[:1, : len(rows[0])], mask[:1, : len(rows[0])])
                wrapped = _LogitsOnly(self.model).eval()
                traced = torch.jit.trace(wrapped, first, check_trace=False, strict=False)
                graph = torch.jit.freeze(traced)
                for _ in range(2):  # the profiling executor specialises on its first calls
                    got = graph(ids, mask).float()
            with torch.inference_mode():
                want = self.model(input_ids=ids, attention_mask=mask).logits.float()
        except Exception:  # tracing is an optimisation; the eager model always works
            return None
        return graph if torch.equal(got, want) else None

    @property
    def traced(self) -> bool:
        return self._graph is not None

    @property
    def variant(self) -> str:
        """What changes answers: part of the model id (sorting and batch size do not)."""
        merged = "merged" if self.loaded.merged else "unmerged"
        return f"{self.precision}-{merged}-len{self.max_length}"

    def warm_up(self) -> None:
        self.probs([WARM_UP_TEXT])

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        if self.family == "decoder":
            return prompt_ids(self.tokenizer, self.template, texts, self.max_length)
        return encoder_ids(self.tokenizer, texts, self.max_length)

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

        input_ids, mask = _padded(batch, self.pad_id)
        threads = torch.get_num_threads()
        single = threads > 1 and input_ids.numel() < SMALL_PASS_TOKENS
        if single:
            torch.set_num_threads(1)
        try:
            logits = self._logits(input_ids, mask)
            if self.temperature != 1.0:
                logits = logits / self.temperature
            result: list[list[float]] = logits.softmax(dim=-1).tolist()
        finally:
            if single:
                torch.set_num_threads(threads)
        return result

    def _logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self._graph is not None and input_ids.numel() < SMALL_PASS_TOKENS:
            logits = self._graph(input_ids, mask).float()
        elif self.family == "encoder":
            logits = self.model(input_ids=input_ids, attention_mask=mask).logits.float()
        else:
            logits = self._label_logits(input_ids, mask)
        return logits

    def _label_logits(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits of the three label words at each prompt's last real token (right padding)."""
        import torch

        logits = self.model(input_ids=input_ids, attention_mask=mask).logits
        offset = logits.shape[1] - input_ids.shape[1]  # prompt tuning prepends virtual tokens
        last = mask.sum(dim=1) - 1 + offset
        rows = torch.arange(input_ids.shape[0])
        return logits[rows, last][:, self.label_ids].float()


def _padded(batch: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids and attention mask (positions then match an unpadded forward pass)."""
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


class _LogitsOnly:
    """Wraps a classifier so that tracing sees tensors in, one tensor out."""

    def __new__(cls, model: Any) -> Any:
        import torch

        class LogitsOnly(torch.nn.Module):
            def __init__(self, inner: Any) -> None:
                super().__init__()
                self.inner = inner

            def forward(self, input_ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
                return self.inner(input_ids=input_ids, attention_mask=mask).logits

        return LogitsOnly(model)


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
