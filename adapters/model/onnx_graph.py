"""The embedded encoder as an ONNX graph: exported once per model id into a cache folder.

Why: a process that runs the model through torch pays ~2 s importing torch before its first
answer, and torch's per-op overhead is most of a single headline's latency. ONNX Runtime with the
`tokenizers` library loads the same function in a fraction of that and runs it with less
overhead. The export needs torch once, on first use; every later process reads the cached graph.

What is exported: `compact_bert`'s classifier with the LoRA adapter merged (the embedded
backend's fp32 model, so answers match it to float rounding), taking token ids only. Texts are
batched by exact token length (`onnx_scorer`), so the graph never sees padding and needs no
attention mask: one op less per layer, and a headline's answer cannot depend on its batch.
The last layer runs at the first token only, the one the pooler reads (the same function,
a seventh less work).
`precision = "int8"` adds static int8 quantisation of the encoder's weight matmuls, calibrated on
the sample headlines shipped in `bot/sample/news.jsonl` (fixed scales: unlike dynamic int8,
answers do not move with the batch); the pooler and the head (Gemm ops) stay fp32.

Layout: `<cache>/<model id>/` holds `model.onnx`, `tokenizer.json` and `graph.json` (what made it,
and the graph's size and sha256). The model id covers the adapter's and the base's files, the
precision, the graph format and the onnxruntime version, so a changed adapter gets a new folder
and never loads a stale graph; a folder whose files do not match its `graph.json` is exported
again (`check_graph`).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from adapters.model.inference_loader import ModelLoadError, load_compact_model

GRAPH_FORMAT = 3  # bump when the exported function or the layout changes
GRAPH = "model.onnx"
TOKENIZER = "tokenizer.json"
META = "graph.json"
OPSET = 17
EXPORT_TOLERANCE = 1e-4  # largest logit difference from torch accepted at export (fp32)
GraphPrecision = Literal["fp32", "int8"]


class GraphUnavailable(ModelLoadError):
    """No ONNX graph can be made for this model here (the caller falls back to torch)."""


@dataclass(frozen=True)
class GraphSpec:
    folder: Path  # the model folder (`lorabot train`/`export`, or the shipped default)
    base: str  # `[model] base` override; empty: the manifest's
    precision: GraphPrecision
    model_id: str  # the ONNX model id: the cache key


def onnxruntime_version() -> str:
    """Part of the model id (a new runtime may round differently); read without importing it."""
    try:
        return importlib.metadata.version("onnxruntime")
    except importlib.metadata.PackageNotFoundError:
        return ""


def graph_dir(cache: Path, model_id: str) -> Path:
    return cache / model_id


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 22):
            hasher.update(block)
    return hasher.hexdigest()


def check_graph(directory: Path, model_id: str) -> str | None:
    """None if `directory` holds a complete graph for `model_id`; else why not, in words."""
    meta_path = directory / META
    if not meta_path.is_file():
        return "no cached graph"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return f"{meta_path} is unreadable ({error})"
    if not isinstance(meta, dict) or meta.get("model_id") != model_id:
        return f"{meta_path} is for another model"
    if meta.get("format") != GRAPH_FORMAT:
        return f"{meta_path} has graph format {meta.get('format')}, not {GRAPH_FORMAT}"
    for name in (GRAPH, TOKENIZER):
        if not (directory / name).is_file():
            return f"{directory / name} is missing"
    graph = directory / GRAPH
    if graph.stat().st_size != meta.get("size") or _sha256(graph) != meta.get("sha256"):
        return f"{graph} does not match its {META} (corrupt or changed)"
    return None


def calibration_headlines() -> list[str]:
    """The fixed calibration set of static int8: the sample news shipped in the package."""
    text = resources.files("bot.sample").joinpath("news.jsonl").read_text(encoding="utf-8")
    return [json.loads(line)["title"] for line in text.splitlines() if line.strip()]


def export_graph(spec: GraphSpec, cache: Path) -> Path:
    """Export `spec`'s model into `cache` (see the module docstring) and return its folder.

    The graph is built in a temporary folder beside the target and renamed into place, so a
    crash or a concurrent export never leaves a half-written graph under the model id."""
    try:
        import torch
    except ImportError:
        raise GraphUnavailable("exporting the ONNX graph needs torch (not installed)") from None
    try:
        import onnx  # noqa: F401  (torch.onnx.export and the quantiser need it)
    except ImportError:
        raise GraphUnavailable("exporting the ONNX graph needs the onnx package") from None
    loaded = load_compact_model(spec.folder, spec.base)
    if loaded is None:
        raise GraphUnavailable(f"{spec.folder}: not a BERT classifier the ONNX export covers")
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache))
    try:
        tokenizer_json = Path(loaded.tokenizer.folder) / TOKENIZER
        shutil.copyfile(tokenizer_json, work / TOKENIZER)
        fp32 = work / "fp32.onnx"
        _export_fp32(loaded.model, loaded.tokenizer, fp32, torch)
        if spec.precision == "int8":
            _quantize(fp32, work / GRAPH, work / TOKENIZER)
            fp32.unlink()
        else:
            fp32.rename(work / GRAPH)
        meta = {
            "format": GRAPH_FORMAT,
            "model_id": spec.model_id,
            "precision": spec.precision,
            "folder": str(spec.folder),
            "torch": torch.__version__,
            "onnxruntime": onnxruntime_version(),
            "opset": OPSET,
            "size": (work / GRAPH).stat().st_size,
            "sha256": _sha256(work / GRAPH),
        }
        (work / META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        return _install(work, graph_dir(cache, spec.model_id), spec.model_id)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _install(work: Path, target: Path, model_id: str) -> Path:
    """Rename the finished export into place. Whatever was there is the graph that could not be
    used (stale, corrupt, or refused by onnxruntime): it is moved aside and removed first."""
    if target.exists():
        stale = target.with_name(f".stale-{target.name}-{os.getpid()}")
        try:
            os.replace(target, stale)
        finally:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        os.replace(work, target)
    except OSError:
        if check_graph(target, model_id) is not None:
            raise  # not another process's finished export: a real failure
    return target


def _ids_only(model: Any, torch: Any) -> Any:
    """The classifier on token ids alone: every row of a batch has the same length (no mask)."""

    class IdsOnly(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any) -> Any:
            bert = self.inner.bert
            x = bert.embeddings(input_ids)
            *layers, last = bert.encoder.layer
            for layer in layers:
                x = layer(x, None)
            pooled = torch.tanh(bert.pooler.dense(_first_token_of_last_layer(last, x, torch)))
            return self.inner.classifier(pooled)

    return IdsOnly(model).eval()


def _first_token_of_last_layer(layer: Any, x: Any, torch: Any) -> Any:
    """The last layer's output at the first token only, which is all the pooler reads.

    Every op of a layer but attention is per token, and attention's output at one position
    needs that position's query alone (keys and values still come from every token), so the
    last layer's query, attention output and feed-forward run on one row instead of the
    headline's 20-odd: about a seventh of the graph's matmul work, the same function."""
    attention = layer.attention.self
    batch, length, hidden = x.shape
    heads = attention.heads
    width = hidden // heads

    def split(t: Any, rows: int) -> Any:
        return t.view(batch, rows, heads, width).transpose(1, 2)

    first = x[:, :1]
    context = torch.nn.functional.scaled_dot_product_attention(
        split(attention.query(first), 1), split(attention.key(x), length),
        split(attention.value(x), length),
    )  # fmt: skip
    first = layer.attention.output(context.transpose(1, 2).reshape(batch, 1, hidden), first)
    out = layer.output(torch.nn.functional.gelu(layer.intermediate.dense(first)), first)
    return out[:, 0]


def _export_fp32(model: Any, tokenizer: Any, out: Path, torch: Any) -> None:
    """torch.onnx.export (the TorchScript exporter: no onnxscript needed), then a check that
    ONNX Runtime computes what torch does on probe batches of several lengths."""
    import numpy as np

    wrapped = _ids_only(model, torch)
    probes = ["Bitcoin jumps after the ETF approval", "Oil slips", "Shares fall on weak guidance"]
    example = torch.tensor([tokenizer(probes[0])["input_ids"]], dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(
            wrapped,
            (example,),
            str(out),
            input_names=["input_ids"],
            output_names=["logits"],
            dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "logits": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
    from adapters.model.onnx_scorer import open_session

    session = open_session(out, threads=1)
    for text in probes:
        ids = tokenizer(text)["input_ids"]
        batch = np.array([ids, ids], dtype=np.int64)
        got = session.run(None, {"input_ids": batch})[0]
        ones = torch.ones(batch.shape, dtype=torch.long)
        with torch.inference_mode():
            want = model(input_ids=torch.tensor(batch), attention_mask=ones).logits.numpy()
        if float(np.abs(got - want).max()) > EXPORT_TOLERANCE:
            raise GraphUnavailable(f"the exported graph differs from torch on {text!r}")


def _quantize(fp32: Path, out: Path, tokenizer_json: Path) -> None:
    """Static int8 (QOperator, per-channel weights, uint8 activations) of the encoder's matmuls,
    scales fixed by one calibration pass over `calibration_headlines()`."""
    import numpy as np
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    tokenizer.no_padding()
    feeds = [
        {"input_ids": np.array([tokenizer.encode(text).ids], dtype=np.int64)}
        for text in calibration_headlines()
    ]

    class Headlines(CalibrationDataReader):
        def __init__(self) -> None:
            self._feeds = iter(feeds)

        def get_next(self) -> dict[str, Any] | None:
            return next(self._feeds, None)

    prepared = fp32.with_name("prepared.onnx")
    quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    import onnx

    graph = onnx.load(str(prepared), load_external_data=False).graph
    weights = {tensor.name for tensor in graph.initializer}
    # attention's two activation-by-activation matmuls stay fp32: quantising both sides cost
    # accuracy (0.8660 against 0.8643 with them fp32) and, at headline lengths, no time
    activations_only = [
        node.name
        for node in graph.node
        if node.op_type == "MatMul" and not any(name in weights for name in node.input)
    ]
    quantize_static(
        str(prepared),
        str(out),
        Headlines(),
        quant_format=QuantFormat.QOperator,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],  # the pooler and the head are Gemm ops: fp32
        nodes_to_exclude=activations_only,
    )
    prepared.unlink()
