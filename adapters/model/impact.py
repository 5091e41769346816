"""Serving an impact model (numbers-only or fusion) as a `SentimentModel` that reads the market.

The answer is the predicted direction over the model's horizon, in the one label order:
bearish = down, neutral = flat, bullish = up, with the class probabilities; so the vote
strategy (or a user strategy) trades on it as on any sentiment model. Beside the text it reads
the item's `MarketContext`, the features of the bars the signal service had seen by the item's
`received` time (`BarWindow`, the same function training used), which is what keeps a replay
past-only by construction.

The fusion runs its own text encoder (the text-only model's folder, copied into it as
`encoder/`) in-process, like the embedded backend: `prepare` embeds many headlines at once off
the event loop, `classify_in_context` is then the small head. The model id is a digest of the
folder's files, computed without loading torch, so a warm replay never loads the weights.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from adapters.model.identity import digest
from bot.config import Settings
from bot.errors import UserError
from bot.protocols import MarketContext, Prediction, SentimentModel
from bot.signals import History, MarketInputs
from training.impact.features import BarWindow, FeatureSpec
from training.impact.manifest import is_impact_folder, read_impact_manifest

if TYPE_CHECKING:
    from training.classifier import SentimentClassifier
    from training.impact.heads import HeadModel

__all__ = ["ImpactModel", "ImpactModelError", "is_impact_folder"]

_MAX_EMBEDDINGS = 200_000  # headlines kept embedded (about 300 MB at 384 floats)


class ImpactModelError(ValueError):
    pass


class ImpactModel:
    def __init__(self, folder: str | Path, *, num_threads: int = 0) -> None:
        self.folder = Path(folder).expanduser()
        try:
            self.manifest: dict[str, Any] = read_impact_manifest(self.folder)
        except ValueError as error:
            raise ImpactModelError(f"[model] path: {error}") from None
        self.kind = str(self.manifest["kind"])
        self.symbol = str(self.manifest["symbol"])
        self.spec = FeatureSpec(tuple(self.manifest["features"]), int(self.manifest["horizon_s"]))
        if tuple(self.manifest["feature_names"]) != self.spec.names:
            raise ImpactModelError(
                f"{self.folder}: its features {self.manifest['feature_names']} are not the ones "
                f"this version computes {list(self.spec.names)}"
            )
        self._model_id = f"impact-{self.kind}-{digest(self.folder)[:16]}"
        self._threads = num_threads
        self._head: HeadModel | None = None
        self._encoder: SentimentClassifier | None = None
        self._embedded: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lorabot-impact")

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def bar_interval_s(self) -> int:
        """The bars' spacing it was trained on (0: not recorded, a model saved before it was)."""
        return int(self.manifest.get("bar_interval_s") or 0)

    def features(self) -> BarWindow:
        """Where this model's contexts come from: the streamed bars of its symbol, folded into
        its training spacing."""
        return BarWindow(self.symbol, self.spec, self.bar_interval_s)

    def _load(self) -> HeadModel:
        with self._lock:
            if self._head is None:
                if self._threads:
                    import torch

                    torch.set_num_threads(self._threads)
                from training.impact.heads import load_head

                if self.kind == "fusion":
                    from training.classifier import load_model

                    self._encoder = load_model(self.folder / str(self.manifest["encoder"]))
                self._head = load_head(self.folder)
            return self._head

    async def load(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    async def start(self) -> None:
        await self.load()

    def _embed(self, texts: Sequence[str]) -> None:
        missing = list(dict.fromkeys(t for t in texts if t not in self._embedded))
        if not missing or self.kind != "fusion":
            return
        self._load()
        from training.impact.text import pooled_embeddings

        assert self._encoder is not None
        if len(self._embedded) + len(missing) > _MAX_EMBEDDINGS:
            self._embedded.clear()
        for text, row in zip(missing, pooled_embeddings(self._encoder, missing), strict=True):
            self._embedded[text] = row

    async def prepare(self, texts: Sequence[str]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._embed, texts)

    def classify_in_context(
        self, texts: Sequence[str], contexts: Sequence[MarketContext]
    ) -> list[Prediction]:
        if len(texts) != len(contexts):
            raise ValueError(f"{len(texts)} texts but {len(contexts)} market contexts")
        head = self._load()
        names = self.spec.names
        for context in contexts:
            if context.names != names:
                raise ImpactModelError(
                    f"market context {list(context.names)} is not this model's {list(names)}"
                )
        features = np.asarray([c.values for c in contexts], dtype=float).reshape(-1, len(names))
        text = None
        if self.kind == "fusion":
            self._embed(texts)
            text = np.stack([self._embedded[t] for t in texts]) if texts else None
        probs = head.predict_proba(features, text)
        return [Prediction.from_probs(list(p), self._model_id) for p in probs]

    async def classify(self, texts: Sequence[str]) -> list[Prediction]:
        """Without a market context every feature is unknown (the training mean)."""
        unknown = MarketContext(self.spec.names, tuple(float("nan") for _ in self.spec.names))
        await self.prepare(texts)
        return self.classify_in_context(texts, [unknown] * len(texts))

    async def close(self) -> None:
        self._executor.shutdown(wait=True)


def build_impact(settings: Settings) -> ImpactModel | None:
    """The impact model `[model] path` names, or None when the folder holds another model."""
    if not is_impact_folder(settings.model.path):
        return None
    try:
        return ImpactModel(settings.model.path, num_threads=settings.model.num_threads)
    except ImpactModelError as error:
        raise UserError(str(error)) from None


def market_inputs_of(model: SentimentModel) -> MarketInputs | None:
    """An impact model with its bar window; None for any other model (it reads no market)."""
    if not isinstance(model, ImpactModel):
        return None
    history = History(model.symbol, model.bar_interval_s, model.spec.history_s)
    return MarketInputs(model, model.features(), history)
