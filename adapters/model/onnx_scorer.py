"""Class probabilities from a cached ONNX graph (`onnx_graph`), on onnxruntime and `tokenizers`.

No torch and no transformers are imported here: this is what lets `lorabot classify` answer in a
fresh process without paying for them.

Why it is built this way:
- texts are grouped by exact token length and each group runs as one unpadded batch, so no row
  ever sees padding: a headline gets the same answer, to the last bit, alone or inside any batch
  (the signal cache stores one answer per text; `tests/model/test_model_onnx.py` checks it);
- a small pass (under `SMALL_PASS_TOKENS` tokens: a headline) runs on a one-thread session, a
  larger one on a session with `[model] num_threads` threads (created on first need): a
  headline's matmuls are too small to split across cores, a backtest's batches are not; both
  sessions compute each row the same way (the matmuls split rows and columns, never the sum);
- worker threads do not spin waiting for work (`allow_spinning = 0`): on a machine whose cores
  are shared, spinning workers steal the core the next op needs;
- the calibration temperature of the manifest divides the logits before the softmax, exactly as
  the torch backend (`inference.Scorer`) applies it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adapters.model.compact_bert import CompactTokenizer
from adapters.model.inference import SMALL_PASS_TOKENS, WARM_UP_TEXT, Probs, encoder_ids
from adapters.model.onnx_graph import GRAPH, GraphPrecision
from bot.errors import UserError


class GraphLoadError(UserError):
    """onnxruntime could not load a cached graph (the caller exports it again)."""


def open_session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session with every graph optimisation, `threads` intra-op threads."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are about unused initialisers
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for bad files
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise GraphLoadError(f"{path}: onnxruntime cannot load the graph: {first}") from None


class OnnxScorer:
    """`inference.Scorer`'s interface over an ONNX graph folder; one instance per model."""

    def __init__(
        self,
        directory: Path,
        precision: GraphPrecision,
        max_length: int,
        temperature: float,
        batch_size: int = 128,
        num_threads: int = 0,
    ) -> None:
        self.directory = directory
        self.precision = precision
        self.max_length = max_length
        self.temperature = temperature
        self.batch_size = batch_size
        self.num_threads = num_threads or max(1, min(os.cpu_count() or 1, 8))
        self.tokenizer = CompactTokenizer(directory)
        self._small = open_session(directory / GRAPH, threads=1)
        self._large: Any = self._small if self.num_threads == 1 else None

    @property
    def variant(self) -> str:
        return f"onnx-{self.precision}-merged-len{self.max_length}"

    @property
    def traced(self) -> bool:
        """The small-pass fast path is always ready (nothing to build, unlike torch's trace)."""
        return True

    def prepare_graph(self) -> bool:
        return True

    def warm_up(self) -> None:
        self.probs([WARM_UP_TEXT])

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return encoder_ids(self.tokenizer, texts, self.max_length)

    def probs(self, texts: Sequence[str]) -> list[Probs]:
        if not texts:
            return []
        import numpy as np

        ids = self.encode(texts)
        by_length: dict[int, list[int]] = {}
        for index, row in enumerate(ids):
            by_length.setdefault(len(row), []).append(index)
        out: list[Probs | None] = [None] * len(ids)
        for length in sorted(by_length):
            indices = by_length[length]
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start : start + self.batch_size]
                batch = np.array([ids[i] for i in chunk], dtype=np.int64)
                for index, p in zip(chunk, self._probs(batch), strict=True):
                    out[index] = (p[0], p[1], p[2])
        return [p for p in out if p is not None]

    def _probs(self, batch: Any) -> list[list[float]]:
        import numpy as np

        session = self._small if batch.size < SMALL_PASS_TOKENS else self._large_session()
        logits = session.run(None, {"input_ids": batch})[0].astype(np.float32)
        if self.temperature != 1.0:
            logits = logits / np.float32(self.temperature)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        result: list[list[float]] = (shifted / shifted.sum(axis=-1, keepdims=True)).tolist()
        return result

    def _large_session(self) -> Any:
        if self._large is None:
            self._large = open_session(self.directory / GRAPH, threads=self.num_threads)
        return self._large
