"""`lorabot serve`: start vLLM for folders made by `lorabot export` and keep it serving.

It waits until vLLM serves every name, prints the `[model]` lines that point lorabot at it
(stdout), and runs until SIGINT or SIGTERM, which stop vLLM's whole process group (also when the
command was started in the background, where SIGINT arrives ignored).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlparse

import click

from bot.cli import config_option, settings_for
from bot.commands.paths import writable_file


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
    from adapters.model.server import (
        ServeSpec,
        VllmServer,
        free_port,
        serve_until_stopped,
        specs_from,
    )

    settings = settings_for(ctx, config_path)
    if log_path is not None:
        writable_file(log_path, "--log")
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

    def announce() -> None:
        click.echo(server.config_lines(), nl=False)
        sys.stdout.flush()
        served = ", ".join([server.plan.model_name, *server.plan.adapter_names])
        click.echo(
            f"lorabot serve: vLLM serves {served} at {server.url}; Ctrl-C stops it", err=True
        )

    asyncio.run(serve_until_stopped(server, config.vllm_start_timeout, announce))
    click.echo("lorabot serve: vLLM stopped", err=True)
