"""`lorabot classify`: one result line per input line, in input order.

A line is `LABEL CONFIDENCE P_BEARISH P_NEUTRAL P_BULLISH[ HEADLINE]` (the headline with `--echo`),
or a JSON object with `--json`. Headlines come from the arguments, else from stdin one per line.
A blank input line gets an empty result line (`null` with `--json`), so output line N always
answers input line N and a script can paste the two side by side. A pipe is read in chunks so that
the model sees large, length-sorted batches, a terminal line by line so each answer comes at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, TextIO

import click

from bot.cli import config_option, settings_for
from bot.config import Settings
from bot.log import setup_logging
from bot.protocols import Prediction, SentimentModel
from bot.signals import SignalCache, normalise


def format_prediction(prediction: Prediction, text: str | None = None) -> str:
    p = prediction.probs
    line = f"{prediction.label.word} {prediction.confidence:.4f} {p[0]:.4f} {p[1]:.4f} {p[2]:.4f}"
    return f"{line} {text}" if text is not None else line


def _json_line(prediction: Prediction, text: str) -> str:
    return json.dumps(
        {
            "label": prediction.label.word,
            "confidence": round(prediction.confidence, 6),
            "probs": dict(
                zip(
                    ("bearish", "neutral", "bullish"),
                    (round(p, 6) for p in prediction.probs),
                    strict=True,
                )
            ),
            "model_id": prediction.model_id,
            "text": text,
        }
    )


def _chunks(stream: TextIO, size: int) -> Iterator[list[str]]:
    """Input lines, stripped, blank ones kept (each gets its own empty result line)."""
    lines = (line.strip() for line in stream)
    if stream.isatty():
        for line in lines:
            yield [line]
        return
    while chunk := list(islice(lines, size)):
        yield chunk


async def _cached_classify(
    model: SentimentModel, cache: SignalCache | None, texts: list[str]
) -> list[Prediction]:
    """Answers from the signal cache where it has them; the model answers the rest once each."""
    if cache is None:
        return await model.classify(texts)
    model_id = model.model_id
    keys = [normalise(t) for t in texts]
    known = cache.get_many(model_id, keys)
    missing = [k for k in dict.fromkeys(keys) if k not in known]
    if missing:
        # the normalised text is what the cache and the signal service feed the model
        answers = await model.classify(missing)
        fresh = list(zip(missing, answers, strict=True))
        cache.put_many(model_id, fresh)
        known.update(fresh)
    return [known[k] for k in keys]


async def _classify_all(
    model: SentimentModel,
    batches: Iterator[list[str]],
    echo: bool,
    as_json: bool,
    cache: SignalCache | None,
) -> None:
    out = sys.stdout
    try:
        for lines in batches:
            texts = [line for line in lines if line]
            answers = iter(await _cached_classify(model, cache, texts) if texts else [])
            for line in lines:
                if not line:
                    out.write("null\n" if as_json else "\n")
                elif as_json:
                    out.write(_json_line(next(answers), line) + "\n")
                else:
                    out.write(format_prediction(next(answers), line if echo else None) + "\n")
            out.flush()
    finally:
        await model.close()
        if cache is not None:
            cache.close()


@click.command()
@click.argument("texts", nargs=-1)
@click.option("--echo", is_flag=True, help="Append each headline to its line.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per headline.")
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Model folder made by `lorabot train`/`export`, or a shipped model's name (overrides "
    "[model] path).",
)
@click.option(
    "--backend",
    type=click.Choice(["lexicon", "embedded", "vllm"]),
    default=None,
    help="Override [model] backend.",
)
@click.option(
    "--runtime",
    type=click.Choice(["onnx", "torch"]),
    default=None,
    help="Override [model] runtime (embedded: ONNX Runtime or torch).",
)
@click.option(
    "--cache/--no-cache",
    default=None,
    help="Use the signal cache in the cache folder (default: [model] cache).",
)
@click.option(
    "--chunk", type=click.IntRange(1), default=2048, show_default=True,
    help="Headlines read from a pipe per model call.",
)  # fmt: skip
@config_option
@click.pass_context
def classify(
    ctx: click.Context,
    texts: Sequence[str],
    echo: bool,
    as_json: bool,
    model_dir: Path | None,
    backend: str | None,
    runtime: str | None,
    cache: bool | None,
    chunk: int,
    config_path: Path | None,
) -> None:
    """Classify headlines (arguments, or stdin one per line) with the configured model.

    Prints `LABEL CONFIDENCE P_BEARISH P_NEUTRAL P_BULLISH` per headline, in order; a blank line
    gets an empty line. Answers
    are cached like the daemon's (by model id and normalised text), so a headline is never
    classified twice by the same model.
    """
    settings = _with_model_overrides(settings_for(ctx, config_path), model_dir, backend)
    if runtime is not None:
        settings = settings.with_overrides(model={"runtime": runtime})
    setup_logging("warning" if settings.log.level == "info" else settings.log.level, "console")
    from bot.assemble import build_model, signal_cache

    model = build_model(settings)
    use_cache = settings.model.cache if cache is None else cache
    answers = signal_cache(settings) if use_cache else None
    batches = iter([[t.strip() for t in texts]]) if texts else _chunks(sys.stdin, chunk)
    asyncio.run(_classify_all(model, batches, echo, as_json, answers))


def _with_model_overrides(
    settings: Settings, model_dir: Path | None, backend: str | None
) -> Settings:
    overrides: dict[str, Any] = {}
    if model_dir is not None:
        overrides["path"] = str(model_dir)
        if backend is None and settings.model.backend in ("lexicon", "scripted"):
            overrides["backend"] = "embedded"
    if backend is not None:
        overrides["backend"] = backend
    return settings.with_overrides(model=overrides) if overrides else settings
