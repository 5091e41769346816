"""The manifest's calibration temperature is applied by every backend, the same way.

softmax(logits / T) in-process (embedded, eager and traced; the reference classifier) and
softmax(log p / T) where vLLM sends probabilities or logprobs: the same numbers either way, the
same answers as T = 1, and a new model id (a cached answer at another temperature is stale).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.model.embedded import EmbeddedModel
from adapters.model.inference import InferenceOptions
from adapters.model.vllm import VllmModel, VllmOptions
from bot.manifest import read_manifest
from tests.model.conftest import HEADLINES
from tests.model.fake_vllm import FakeVllm, fake_logprob, fake_probs

T = 2.5


def _with_temperature(folder: Path, target: Path, temperature: float) -> Path:
    shutil.copytree(folder, target)
    manifest = json.loads((target / "lorabot.json").read_text())
    manifest["temperature"] = temperature
    (target / "lorabot.json").write_text(json.dumps(manifest))
    return target


def _tempered(probs: list[float], temperature: float) -> list[float]:
    logs = [math.log(p) / temperature for p in probs]
    weights = [math.exp(v - max(logs)) for v in logs]
    return [w / sum(weights) for w in weights]


@pytest.mark.parametrize("trace", [False, True])
async def test_embedded_divides_the_logits_by_the_temperature(
    encoder_adapter: Path, tmp_path: Path, trace: bool
) -> None:
    hot = _with_temperature(encoder_adapter, tmp_path / "hot", T)
    options = InferenceOptions(precision="fp32", trace=trace)
    plain, calibrated = EmbeddedModel(encoder_adapter, options), EmbeddedModel(hot, options)
    try:
        if trace:
            await calibrated.start()
            await plain.start()
        before = await plain.classify(HEADLINES)
        after = await calibrated.classify(HEADLINES)
    finally:
        await plain.close()
        await calibrated.close()
    assert calibrated.model_id != plain.model_id
    for one, two in zip(before, after, strict=True):
        assert two.probs == pytest.approx(_tempered(list(one.probs), T), abs=1e-5)
        assert two.label == one.label
        assert two.confidence < one.confidence or one.confidence == pytest.approx(1 / 3)


def test_the_reference_classifier_applies_it_unless_asked_for_raw(
    encoder_adapter: Path, tmp_path: Path
) -> None:
    from training.classifier import load_model

    hot = load_model(_with_temperature(encoder_adapter, tmp_path / "hot", T))
    raw = hot.predict_proba(HEADLINES, calibrated=False)
    plain = load_model(encoder_adapter).predict_proba(HEADLINES)
    assert raw == pytest.approx(plain, abs=1e-9)
    calibrated = hot.predict_proba(HEADLINES)
    for row, base in zip(calibrated, plain, strict=True):
        assert list(row) == pytest.approx(_tempered(list(base), T), abs=1e-9)


@pytest.fixture
async def fake() -> AsyncIterator[FakeVllm]:
    server = FakeVllm()
    await server.start()
    yield server
    await server.stop()


def _options(url: str) -> VllmOptions:
    return VllmOptions(url=url, served_name="fin", timeout=2.0, retries=0)


async def test_vllm_encoder_tempers_the_served_probabilities(
    fake: FakeVllm, encoder_merged: Path, tmp_path: Path
) -> None:
    hot = _with_temperature(encoder_merged, tmp_path / "hot", T)
    model = VllmModel(_options(fake.url), read_manifest(hot), hot)
    try:
        predictions = await model.classify(HEADLINES)
    finally:
        await model.close()
    sent = [row for body in fake.behaviour.bodies for row in body["input"]]
    for prediction, ids in zip(predictions, sent, strict=True):
        served = fake_probs(" ".join(map(str, ids)))
        assert prediction.probs == pytest.approx(_tempered(served, T), abs=1e-12)


async def test_vllm_decoder_tempers_the_label_logprobs(
    fake: FakeVllm, decoder_lora: Path, tmp_path: Path
) -> None:
    from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template

    hot = _with_temperature(decoder_lora, tmp_path / "hot", T)
    manifest = read_manifest(hot)
    model = VllmModel(_options(fake.url), manifest, hot)
    try:
        predictions = await model.classify(HEADLINES[:2])
    finally:
        await model.close()
    tokenizer = model._tokenizer  # the client's own tokenizer: the prompts it sent
    ids = label_token_ids(tokenizer, manifest)
    prompts = prompt_ids(tokenizer, prompt_template(manifest), HEADLINES[:2], 512)
    for prediction, prompt in zip(predictions, prompts, strict=True):
        logs = [fake_logprob(prompt, token) for token in ids]
        raw = [math.exp(v - max(logs)) for v in logs]
        raw = [w / sum(raw) for w in raw]
        assert prediction.probs == pytest.approx(_tempered(raw, T), abs=1e-9)
