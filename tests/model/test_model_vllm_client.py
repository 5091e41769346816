"""The vLLM client against a local server speaking vLLM's protocol: answers, retries, circuit
breaker, and every fault real vLLM cannot be made to show on demand."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template
from adapters.model.server import free_port
from adapters.model.vllm import ModelNotServed, VllmModel, VllmOptions, build_vllm
from bot.config import Settings
from bot.errors import UserError
from bot.manifest import read_manifest
from bot.protocols import ModelUnavailable, SentimentModel
from tests.model.conftest import HEADLINES
from tests.model.fake_vllm import FakeVllm, fake_logprob, fake_probs


@pytest.fixture
async def fake() -> AsyncIterator[FakeVllm]:
    server = FakeVllm()
    await server.start()
    yield server
    await server.stop()


def _options(url: str, name: str = "fin", **kw: float | int) -> VllmOptions:
    values: dict[str, float | int] = {
        "timeout": 2.0, "retries": 2, "retry_backoff": 0.01, "circuit_failures": 3,
        "circuit_reset": 0.3, **kw,
    }  # fmt: skip
    return VllmOptions(url=url, served_name=name, **values)  # type: ignore[arg-type]


def _encoder(url: str, folder: Path, name: str = "fin", **kw: float | int) -> VllmModel:
    return VllmModel(_options(url, name, **kw), read_manifest(folder), folder)


async def test_encoder_probabilities_come_back_in_input_order(
    fake: FakeVllm, encoder_merged: Path
) -> None:
    model = _encoder(fake.url, encoder_merged, batch_size=2)
    assert isinstance(model, SentimentModel)
    try:
        predictions = await model.classify(HEADLINES)
    finally:
        await model.close()
    from transformers import AutoTokenizer

    # the folder ships its tokenizer: token ids go to the server, cut as transformers cuts them
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_merged))
    ids = tokenizer(HEADLINES, truncation=True, max_length=64)["input_ids"]
    for prediction, row in zip(predictions, ids, strict=True):
        assert prediction.probs == pytest.approx(fake_probs(" ".join(map(str, row))), abs=1e-12)
        assert prediction.model_id == model.model_id
    assert fake.behaviour.calls["classify"] == 3  # 5 texts in batches of 2
    sent = [row for body in fake.behaviour.bodies for row in body["input"]]
    assert sent == ids


@pytest.fixture
def textual(encoder_merged: Path, tmp_path: Path) -> Path:
    """A merged encoder's manifest and config without its tokenizer: the client sends text."""
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("lorabot.json", "config.json"):
        (folder / name).write_bytes((encoder_merged / name).read_bytes())
    return folder


async def test_encoder_without_a_local_tokenizer_sends_text(fake: FakeVllm, textual: Path) -> None:
    model = _encoder(fake.url, textual)
    predictions = await model.classify(HEADLINES)
    await model.close()
    for prediction, text in zip(predictions, HEADLINES, strict=True):
        assert prediction.probs == pytest.approx(fake_probs(text), abs=1e-12)
    body = fake.behaviour.bodies[0]
    assert body["input"] == HEADLINES
    assert (body["truncate_prompt_tokens"], body["truncation_side"]) == (64, "right")


async def test_decoder_label_words_are_scored_exactly(
    fake: FakeVllm, decoder_lora: Path, tiny_llama: Path
) -> None:
    model = VllmModel(_options(fake.url), read_manifest(decoder_lora), decoder_lora)
    try:
        predictions = await model.classify(HEADLINES)
    finally:
        await model.close()
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_llama))
    manifest = read_manifest(decoder_lora)
    words = label_token_ids(tokenizer, manifest)
    prompts = prompt_ids(tokenizer, prompt_template(manifest), HEADLINES, manifest.max_length)
    for prediction, prompt in zip(predictions, prompts, strict=True):
        logprobs = [fake_logprob(prompt, token) for token in words]
        top = max(logprobs)
        expected = [math.exp(v - top) for v in logprobs]
        assert prediction.probs == pytest.approx([e / sum(expected) for e in expected], abs=1e-12)
    bodies = fake.behaviour.bodies
    assert sorted(b["allowed_token_ids"][0] for b in bodies) == sorted(words)
    assert all(b["max_tokens"] == 1 and b["logprobs"] == 0 and b["model"] == "fin" for b in bodies)
    assert all(b["prompt"] == prompts for b in bodies)


async def test_server_down_is_model_unavailable(encoder_merged: Path) -> None:
    model = _encoder(f"http://127.0.0.1:{free_port()}", encoder_merged)
    with pytest.raises(ModelUnavailable, match="after 3 attempts"):
        await model.classify(HEADLINES)
    await model.close()


async def test_slow_server_times_out_as_model_unavailable(
    fake: FakeVllm, encoder_merged: Path
) -> None:
    fake.behaviour.delay = 1.0
    model = _encoder(fake.url, encoder_merged, timeout=0.2, retries=1)
    with pytest.raises(ModelUnavailable, match=r"no answer within 0.2s"):
        await model.classify(HEADLINES[:1])
    await model.close()
    assert fake.behaviour.calls["classify"] == 2


async def test_transient_500s_are_retried(fake: FakeVllm, encoder_merged: Path) -> None:
    fake.behaviour.fail_times = 2
    model = _encoder(fake.url, encoder_merged)
    predictions = await model.classify(HEADLINES[:2])
    await model.close()
    assert len(predictions) == 2
    assert fake.behaviour.calls["classify"] == 3


async def test_circuit_opens_fails_fast_then_recovers(fake: FakeVllm, encoder_merged: Path) -> None:
    fake.behaviour.fail_times = 10_000
    model = _encoder(fake.url, encoder_merged, retries=0, circuit_failures=2, circuit_reset=0.3)
    for _ in range(2):
        with pytest.raises(ModelUnavailable, match="HTTP 500"):
            await model.classify(HEADLINES[:1])
    reached = fake.behaviour.calls["classify"]
    with pytest.raises(ModelUnavailable, match="circuit open"):
        await model.classify(HEADLINES[:1])
    assert fake.behaviour.calls["classify"] == reached  # failed fast, the server was spared
    await asyncio.sleep(0.35)
    fake.behaviour.fail_times = 0
    assert len(await model.classify(HEADLINES[:1])) == 1  # the half-open trial succeeds
    assert len(await model.classify(HEADLINES[:1])) == 1  # and the circuit is closed again
    await model.close()


async def test_malformed_and_misshapen_answers_are_model_unavailable(
    fake: FakeVllm, encoder_merged: Path
) -> None:
    fake.behaviour.malformed = True
    model = _encoder(fake.url, encoder_merged)
    with pytest.raises(ModelUnavailable, match="malformed JSON"):
        await model.classify(HEADLINES[:1])
    assert fake.behaviour.calls["classify"] == 3
    fake.behaviour.malformed = False
    fake.behaviour.wrong_shape = True
    with pytest.raises(ModelUnavailable, match="unexpected answer"):
        await model.classify(HEADLINES[:1])
    await model.close()


async def test_unknown_adapter_is_a_clear_user_error(fake: FakeVllm, encoder_merged: Path) -> None:
    model = _encoder(fake.url, encoder_merged, name="missing-adapter")
    with pytest.raises(
        ModelNotServed, match=r"does not serve 'missing-adapter' \(it serves base, fin\)"
    ):
        await model.classify(HEADLINES[:1])
    assert isinstance(ModelNotServed("x"), UserError)
    await model.close()
    # an adapter unloaded after the health check: vLLM's own 404 is reported the same way
    model = _encoder(fake.url, encoder_merged)
    await model.classify(HEADLINES[:1])
    fake.behaviour.served = ["base"]
    with pytest.raises(ModelNotServed, match="does not exist"):
        await model.classify(HEADLINES[:1])
    await model.close()


async def test_label_order_mismatch_is_refused(fake: FakeVllm, textual: Path) -> None:
    fake.behaviour.labels = ("bullish", "neutral", "bearish")
    model = _encoder(fake.url, textual)
    with pytest.raises(UserError, match="not in the order bearish, neutral, bullish"):
        await model.classify(["abcdef"])  # leans to index 2
    await model.close()


async def test_build_vllm_from_settings(
    fake: FakeVllm, encoder_merged: Path, decoder_lora: Path
) -> None:
    base = Settings().with_overrides(model={"backend": "vllm", "vllm_url": fake.url})
    model = build_vllm(
        base.with_overrides(model={"path": str(encoder_merged), "vllm_model": "fin"})
    )
    assert model.family == "encoder" and model.served_name == "fin"
    a = build_vllm(base.with_overrides(model={"path": str(decoder_lora), "vllm_model": "fin"}))
    b = build_vllm(base.with_overrides(model={"path": str(decoder_lora), "vllm_model": "other"}))
    assert a.family == "decoder" and a.model_id != b.model_id and a.model_id != model.model_id
    assert (
        a.model_id
        == build_vllm(
            base.with_overrides(model={"path": str(decoder_lora), "vllm_model": "fin"})
        ).model_id
    )
    with pytest.raises(UserError, match="name the LoRA adapter"):
        build_vllm(base.with_overrides(model={"path": str(decoder_lora)}))
    # no path: the server is asked which folder it serves (here not a local one)
    discovered = await asyncio.to_thread(build_vllm, base)
    assert discovered.served_name == "base" and discovered.manifest is None
    with pytest.raises(UserError, match="cannot reach vLLM"):
        build_vllm(base.with_overrides(model={"vllm_url": f"http://127.0.0.1:{free_port()}"}))
    await model.close()


def test_build_vllm_refuses_what_vllm_cannot_serve(
    decoder_prompt_tuned: Path, tmp_path: Path
) -> None:
    settings = Settings().with_overrides(
        model={"backend": "vllm", "path": str(decoder_prompt_tuned), "vllm_model": "x"}
    )
    with pytest.raises(UserError, match=r"cannot be served by vLLM.*embedded backend"):
        build_vllm(settings)
    folder = tmp_path / "enc"
    folder.mkdir()
    (folder / "lorabot.json").write_text(json.dumps({"family": "encoder"}))
    with pytest.raises(UserError, match="invalid manifest"):
        build_vllm(settings.with_overrides(model={"path": str(folder)}))
    shutil.rmtree(folder)
