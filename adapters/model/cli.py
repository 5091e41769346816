"""`lorabot classify` and `lorabot serve`.

`classify` prints one line per headline, in input order:
`LABEL CONFIDENCE P_BEARISH P_NEUTRAL P_BULLISH[ HEADLINE]` (the headline with `--echo`), or a
JSON object per line with `--json`. Headlines come from the arguments, else from stdin one per
line (blank lines are skipped); a pipe is read in chunks so that the model sees large, length-
sorted batches, a terminal line by line so each answer comes at once.

`serve` starts vLLM for folders made by `lorabot export`, waits until it serves them, prints the
config lines that point lorabot at it (stdout), and runs until interrupted.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Iterator, Sequence
from itertools import islice
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

import click

from bot.cli import config_option, settings_for
from bot.config import Settings
from bot.errors import UserError
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
    lines = (line.strip() for line in stream)
    headlines = (line for line in lines if line)
    if stream.isatty():
        for line in headlines:
            yield [line]
        return
    while chunk := list(islice(headlines, size)):
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
        for texts in batches:
            predictions = await _cached_classify(model, cache, texts)
            for prediction, text in zip(predictions, texts, strict=True):
                if as_json:
                    out.write(_json_line(prediction, text) + "\n")
                else:
                    out.write(format_prediction(prediction, text if echo else None) + "\n")
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
    help="Model folder made by `lorabot train`/`export` (overrides [model] path).",
)
@click.option(
    "--backend",
    type=click.Choice(["lexicon", "embedded", "vllm"]),
    default=None,
    help="Override [model] backend.",
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
    cache: bool | None,
    chunk: int,
    config_path: Path | None,
) -> None:
    """Classify headlines (arguments, or stdin one per line) with the configured model.

    Prints `LABEL CONFIDENCE P_BEARISH P_NEUTRAL P_BULLISH` per headline, in order. Answers
    are cached like the daemon's (by model id and normalised text), so a headline is never
    classified twice by the same model.
    """
    settings = _with_model_overrides(settings_for(ctx, config_path), model_dir, backend)
    setup_logging("warning" if settings.log.level == "info" else settings.log.level, "console")
    from bot.assemble import build_model, signal_cache

    model = build_model(settings)
    use_cache = settings.model.cache if cache is None else cache
    answers = signal_cache(settings) if use_cache else None
    batches = iter([[t for t in texts if t.strip()]]) if texts else _chunks(sys.stdin, chunk)
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


@click.command()
@click.option(
    "--model",
    "model_dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    required=True,
    help="Folder made by `lorabot export`: a merged model, or a decoder LoRA adapter.",
)
@click.option(
    "--adapter",
    "adapters",
    multiple=True,
    metavar="NAME=DIR",
    help="Another decoder LoRA adapter over the same base (repeatable).",
)
@click.option("--name", default="", help="Served name of --model (default: its folder name).")
@click.option("--host", default=None, help="Bind address (default: from [model] vllm_url).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="0: a free port.")
@click.option(
    "--env",
    "env_path",
    default=None,
    help="vLLM's virtual environment (default: [model] vllm_env, else the project's).",
)
@click.option(
    "--log",
    "log_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write vLLM's output to this file instead of stderr.",
)
@config_option
@click.pass_context
def serve(
    ctx: click.Context,
    model_dir: Path,
    adapters: Sequence[str],
    name: str,
    host: str | None,
    port: int | None,
    env_path: str | None,
    log_path: Path | None,
    config_path: Path | None,
) -> None:
    """Start vLLM for exported models and print the config lines that use it."""
    from adapters.model.server import ServeSpec, VllmServer, free_port, specs_from

    settings = settings_for(ctx, config_path)
    config = settings.model
    url = urlparse(config.vllm_url)
    chosen_host = host or url.hostname or "127.0.0.1"
    chosen_port = (url.port or 8000) if port is None else port
    if chosen_port == 0:
        chosen_port = free_port(chosen_host)
    spec = ServeSpec(
        model=model_dir,
        adapters=specs_from(adapters),
        name=name,
        host=chosen_host,
        port=chosen_port,
        dtype=config.vllm_dtype,
        max_model_len=config.vllm_max_model_len,
        kv_cache_gib=config.vllm_kv_cache_gib,
        eager=config.vllm_eager,
        extra_args=config.vllm_args,
        env=env_path if env_path is not None else config.vllm_env,
    )
    server = VllmServer(spec, log_path)
    click.echo(f"lorabot serve: starting vLLM: {' '.join(server.plan.argv)}", err=True)
    stop_requested = False

    def on_signal(signum: int, _: object) -> None:
        nonlocal stop_requested
        stop_requested = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_signal)
    server.start()
    try:
        server.wait_healthy(config.vllm_start_timeout)
        click.echo(server.config_lines(), nl=False)
        sys.stdout.flush()
        served = ", ".join([server.plan.model_name, *server.plan.adapter_names])
        click.echo(
            f"lorabot serve: vLLM serves {served} at {server.url}; Ctrl-C stops it", err=True
        )
        assert server.process is not None
        code = server.process.wait()
        if not stop_requested:
            raise UserError(f"vLLM exited with code {code}")
    except KeyboardInterrupt:
        click.echo("lorabot serve: stopping vLLM", err=True)
    finally:
        server.stop()
        signal.signal(signal.SIGTERM, previous)
