"""Builds the configured `SentimentModel` — the one place that picks a model backend.

Backends are imported lazily: the lexicon baseline needs no torch, so a lexicon backtest or
`lorabot status` never loads it.
"""

from __future__ import annotations

from bot.config import Settings
from bot.errors import UserError
from bot.protocols import SentimentModel


def build_model(settings: Settings) -> SentimentModel:
    backend = settings.model.backend
    if backend == "lexicon":
        from adapters.model.lexicon import LexiconModel

        return LexiconModel()
    if backend == "scripted":
        from adapters.model.scripted import ScriptedModel

        if not settings.model.scripted_file:
            raise UserError("[model] backend = 'scripted' needs [model] scripted_file")
        return ScriptedModel.from_file(settings.model.scripted_file)
    if backend == "embedded":
        try:
            from adapters.model.embedded import build_embedded
        except ImportError as error:
            raise UserError(f"the embedded model backend is not available: {error}") from None
        return build_embedded(settings)
    if backend == "vllm":
        try:
            from adapters.model.vllm import build_vllm
        except ImportError as error:
            raise UserError(f"the vLLM model backend is not available: {error}") from None
        return build_vllm(settings)
    raise UserError(f"[model] backend: unknown backend {backend!r}")
