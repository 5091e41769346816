"""The configured models: `[model]`'s, and each `[[model.extra]]` beside it.

`bot/assemble.py` hands these out (it is the one module of `bot/` that may import adapters).
Backends are imported lazily: the lexicon baseline needs no torch, so a lexicon backtest or
`lorabot status` never loads it. An extra model is built exactly as `[model]` would be with its
own keys put in (the unset ones keep `[model]`'s: threads, batching, precision), so one rule
chooses the backend for both, and an impact folder named by an extra reads the bars as the
first model would.
"""

from __future__ import annotations

from bot.config import ExtraModelConfig, Settings
from bot.errors import UserError
from bot.protocols import SentimentModel
from bot.signals import MarketInputs, ModelReader


def build_model(settings: Settings) -> SentimentModel:
    """The `SentimentModel` `[model]` configures."""
    backend = settings.model.backend
    if backend == "lexicon":
        from adapters.model.lexicon import LexiconModel

        return LexiconModel()
    if backend == "scripted":
        from adapters.model.scripted import ScriptedModel

        if not settings.model.scripted_file:
            raise UserError("[model] backend = 'scripted' needs [model] scripted_file")
        return ScriptedModel.from_file(settings.model.scripted_file)
    if backend == "embedded" and settings.model.path:
        from adapters.model.impact import build_impact

        if (impact := build_impact(settings)) is not None:  # an impact model folder
            return impact
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


def market_inputs(settings: Settings, model: SentimentModel) -> MarketInputs | None:
    """An impact model's market contexts, from the bars `build_engine` routes to `on_bar`."""
    if not settings.model.path:
        return None
    from adapters.model.impact import market_inputs_of

    return market_inputs_of(model)


def extra_settings(settings: Settings, extra: ExtraModelConfig) -> Settings:
    """`settings` with `[model]` replaced by what one `[[model.extra]]` table names."""
    keys = {
        "backend": extra.backend,
        "path": extra.path,
        "base": extra.base,
        "scripted_file": extra.scripted_file,
        "extra": (),
    }
    keys |= {k: v for k, v in (("vllm_url", extra.vllm_url), ("vllm_model", extra.vllm_model)) if v}
    return settings.model_copy(update={"model": settings.model.model_copy(update=keys)})


def extra_readers(settings: Settings, first: SentimentModel) -> list[ModelReader]:
    """The `[[model.extra]]` models, each with its market inputs and vote weight. A model named
    twice (the same model id as `[model]`'s or an earlier extra's) is refused in one line: its
    signals would share one key in the store and count twice in the vote."""
    readers: list[ModelReader] = []
    seen = {first.model_id: "[model]"}
    for index, extra in enumerate(settings.model.extra):
        where = f"[[model.extra]] #{index + 1}"
        one = extra_settings(settings, extra)
        try:
            model = build_model(one)
        except UserError as error:
            raise UserError(f"{where}: {error}") from None
        if model.model_id in seen:
            raise UserError(
                f"{where}: the same model as {seen[model.model_id]} (model id "
                f"{model.model_id}); name a different backend, path or file"
            )
        seen[model.model_id] = where
        readers.append(ModelReader(model, market_inputs(one, model), extra.weight))
    return readers
