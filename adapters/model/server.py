"""Start a real vLLM server (from its own environment) for folders made by `lorabot export`.

The flags come from the folders' manifests, so a user never has to know them:
- a decoder LoRA adapter is served over its base model with `--enable-lora --lora-modules
  name=DIR ...` (several adapters over one base, chosen per request by name), `--max-lora-rank`
  from the adapters' ranks;
- a merged or fully fine-tuned model (encoder classifier or decoder) is served as the model itself;
  vLLM recognises a sequence-classification head and answers `/classify` for it.
The server runs in its own process group so that stopping it also stops vLLM's engine and worker
processes; `serve_until_stopped` stops that group on SIGINT or SIGTERM through the shared loop
handlers (`bot.shutdown`), which also works when `lorabot serve` was started in the background
with SIGINT ignored. `lorabot serve` and the tests both use this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from adapters.model.inference_loader import lora_rank
from adapters.model.vllm_env import ensure, python_of, resolve_env_path
from bot.errors import UserError
from bot.manifest import Manifest, read_manifest, resolve_base
from bot.shutdown import stop_on_signals

LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # what vLLM's --max-lora-rank accepts


class ServeError(UserError):
    pass


@dataclass(frozen=True)
class ServeSpec:
    model: Path
    adapters: tuple[tuple[str, Path], ...] = ()
    name: str = ""  # served name of `model` (its folder name when empty)
    host: str = "127.0.0.1"
    port: int = 8000
    dtype: str = "float32"
    max_model_len: int = 512
    kv_cache_gib: float = 1.0
    eager: bool = True
    extra_args: tuple[str, ...] = ()
    env: str = ""  # vLLM's virtual environment; empty: the project's default


@dataclass(frozen=True)
class ServePlan:
    """What will be run: the argv, the environment additions and the names it will serve."""

    argv: list[str]
    env: dict[str, str]
    model_name: str
    adapter_names: tuple[str, ...]
    folders: dict[str, Path] = field(default_factory=dict)  # served name -> lorabot folder
    family: str = "encoder"

    @property
    def default_name(self) -> str:
        """What lorabot should ask for: the first adapter, else the model."""
        return self.adapter_names[0] if self.adapter_names else self.model_name


def served_name_for(folder: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", folder.resolve().name).strip("-")
    return name or "model"


def _servable(folder: Path) -> Manifest:
    manifest = read_manifest(folder)
    if not manifest.vllm_servable:
        raise ServeError(
            f"{folder}: a {manifest.method} {manifest.kind} cannot be served by vLLM (it serves "
            "LoRA adapters and merged models); it runs on the embedded backend, or export it with "
            "`lorabot export --merge`"
        )
    return manifest


def plan(spec: ServeSpec, python: str = "python") -> ServePlan:
    """The vLLM command line for `spec` (see the module docstring); no process is started."""
    model_dir = spec.model.expanduser().resolve()
    manifest = _servable(model_dir)
    lora: list[tuple[str, Path]] = []
    folders: dict[str, Path] = {}
    if manifest.kind == "adapter":
        base = resolve_base(manifest.base_model)
        served_model = base
        model_name = f"{served_name_for(Path(base))}-base" if Path(base).exists() else base
        lora.append((spec.name or served_name_for(model_dir), model_dir))
    else:
        served_model = str(model_dir)
        model_name = spec.name or served_name_for(model_dir)
        folders[model_name] = model_dir
    for name, folder in spec.adapters:
        lora.append((name, folder.expanduser().resolve()))
    for name, folder in lora:
        adapter = _servable(folder)
        if (adapter.family, adapter.kind) != ("decoder", "adapter"):
            raise ServeError(f"{folder}: --adapter takes decoder LoRA adapter folders")
        if resolve_base(adapter.base_model) != served_model and str(folder) != served_model:
            raise ServeError(
                f"{folder}: its base model {adapter.base_model!r} is not the served model "
                f"{served_model!r}; adapters served together must share one base"
            )
        folders[name] = folder
    names = [n for n, _ in lora]
    if len(set(names)) != len(names) or model_name in names:
        raise ServeError(f"served names must be unique: {[model_name, *names]}")
    argv = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", served_model,
        "--served-model-name", model_name,
        "--host", spec.host,
        "--port", str(spec.port),
        "--dtype", spec.dtype,
        "--max-model-len", str(spec.max_model_len),
        "--disable-log-stats",
    ]  # fmt: skip
    if spec.eager:
        argv.append("--enforce-eager")
    if lora:
        rank = max(lora_rank(folder) for _, folder in lora)
        allowed = next((r for r in LORA_RANKS if r >= rank), None)
        if allowed is None:
            raise ServeError(f"LoRA rank {rank} is larger than vLLM supports ({LORA_RANKS[-1]})")
        argv += ["--enable-lora", "--max-lora-rank", str(allowed), "--max-loras", str(len(lora))]
        argv += ["--lora-modules", *(f"{name}={folder}" for name, folder in lora)]
    argv += list(spec.extra_args)
    env = {
        "VLLM_CPU_KVCACHE_SPACE": f"{spec.kv_cache_gib:g}",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if Path(served_model).exists():
        env["HF_HUB_OFFLINE"] = "1"  # everything is local: never reach for a hub
    return ServePlan(argv, env, model_name, tuple(names), folders, manifest.family)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _get_json(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


class VllmServer:
    """One vLLM process (group): start, wait until it serves every name, stop."""

    def __init__(self, spec: ServeSpec, log_path: Path | None = None) -> None:
        self.spec = spec
        env_path = resolve_env_path(spec.env)
        self.env_path = env_path
        self.plan = plan(spec, str(python_of(env_path)))
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log_handle: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.spec.host}:{self.spec.port}"

    def start(self, build_env: bool = True) -> None:
        if build_env:
            ensure(self.env_path)
        env = {**os.environ, **self.plan.env}
        out: IO[bytes] | int | None = None
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_handle = self.log_path.open("ab")
            out = self._log_handle
        else:
            out = sys.stderr.fileno()
        self.process = subprocess.Popen(
            self.plan.argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches engine and workers
        )

    def log_tail(self, lines: int = 25) -> str:
        if self.log_path is None or not self.log_path.is_file():
            return ""
        text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait_healthy(self, timeout: float) -> None:
        """Until `/health` is OK and `/v1/models` lists every served name."""
        assert self.process is not None, "start() first"
        wanted = {self.plan.model_name, *self.plan.adapter_names}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code = self.process.poll()
            if code is not None:
                raise ServeError(f"vLLM exited with code {code} before it was ready{self._tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=2):
                    pass
                listing = _get_json(f"{self.url}/v1/models", 5)
                served = {str(e.get("id")) for e in listing.get("data", [])}
                if wanted <= served:
                    return
            except (urllib.error.URLError, OSError, ValueError, AttributeError):
                pass
            time.sleep(0.5)
        self.stop()
        raise ServeError(
            f"vLLM did not become healthy within {timeout:g}s ([model] vllm_start_timeout)"
            f"{self._tail()}"
        )

    def _tail(self) -> str:
        if self.log_path is None:
            return ""
        return f"; the end of its log ({self.log_path}):\n{self.log_tail()}"

    def stop(self, grace: float = 20.0) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        if process is not None:
            # vLLM's engine and workers share the group; make sure none outlives the server.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._log_handle is not None:
            self._log_handle.close()
            self._log_handle = None

    def __enter__(self) -> VllmServer:
        self.start()
        try:
            self.wait_healthy(600)
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def config_lines(self, name: str = "") -> str:
        """The `[model]` lines that point lorabot at this server."""
        chosen = name or self.plan.default_name
        folder = self.plan.folders.get(chosen)
        lines = [
            "[model]",
            'backend = "vllm"',
            f'vllm_url = "{self.url}"',
            f'vllm_model = "{chosen}"',
        ]
        if folder is not None:
            lines.append(f'path = "{folder}"')
        return "\n".join(lines) + "\n"


def parse_adapter(value: str) -> tuple[str, Path]:
    name, sep, folder = value.partition("=")
    if not sep or not name or not folder:
        raise ServeError(f"--adapter {value!r}: expected NAME=DIR")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name):
        raise ServeError(f"--adapter {value!r}: the name may hold letters, digits, '.', '_', '-'")
    return name, Path(folder)


def specs_from(adapters: Sequence[str]) -> tuple[tuple[str, Path], ...]:
    return tuple(parse_adapter(a) for a in adapters)


async def serve_until_stopped(
    server: VllmServer, start_timeout: float, on_ready: Callable[[], None]
) -> None:
    """Start `server`, call `on_ready` once it serves every name, and run until SIGINT/SIGTERM.

    A signal during start-up stops it too. vLLM exiting on its own is an error (a `ServeError`
    with its exit code); however it ends, vLLM's whole process group is gone on return.
    """
    stop = asyncio.Event()
    undo = stop_on_signals(stop.set)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.to_thread(server.start)
        healthy = asyncio.ensure_future(asyncio.to_thread(server.wait_healthy, start_timeout))
        await asyncio.wait({healthy, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            await asyncio.to_thread(server.stop)
            with contextlib.suppress(ServeError):
                await healthy
            return
        healthy.result()
        on_ready()
        assert server.process is not None
        exited = asyncio.ensure_future(asyncio.to_thread(server.process.wait))
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if not stop.is_set():
            raise ServeError(f"vLLM exited with code {exited.result()}")
    finally:
        undo()
        stopping.cancel()
        await asyncio.to_thread(server.stop)
