"""The embedded backend: real models, real forward passes, the micro-batcher and the model id."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest
import torch

from adapters.model.embedded import EmbeddedModel, build_embedded
from adapters.model.inference import InferenceOptions
from adapters.model.inference_loader import ModelLoadError
from bot.config import Settings
from bot.events import Label
from bot.protocols import ModelUnavailable, SentimentModel
from tests.model import builders
from tests.model.conftest import HEADLINES


def _peft_encoder_probs(adapter: Path, texts: list[str]) -> list[list[float]]:
    """The plain reference: transformers + peft, fp32, unmerged, one padded batch."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    from bot.manifest import embedded_base_path

    tokenizer = AutoTokenizer.from_pretrained(str(embedded_base_path()))
    model = PeftModel.from_pretrained(builders.encoder_base(), str(adapter)).eval()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        return model(**batch).logits.softmax(-1).tolist()  # type: ignore[no-any-return]


def _peft_decoder_probs(base: Path, adapter: Path, texts: list[str]) -> list[list[float]]:
    """Each prompt alone (no padding), next-token logits of the three label words."""
    from peft import PeftModel
    from transformers import AutoTokenizer, LlamaForCausalLM

    from bot.manifest import DEFAULT_PROMPT

    tokenizer = AutoTokenizer.from_pretrained(str(base))
    words = [tokenizer.encode(f"Sentiment: {w}", add_special_tokens=False)[-1]
             for w in ("negative", "neutral", "positive")]  # fmt: skip
    model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(str(base)), str(adapter))
    model.eval()
    out = []
    with torch.no_grad():
        for text in texts:
            ids = tokenizer(DEFAULT_PROMPT.replace("{text}", text), return_tensors="pt")[
                "input_ids"
            ]
            logits = model(input_ids=ids).logits[0, -1, words]
            out.append(logits.softmax(-1).tolist())
    return out


@pytest.mark.parametrize("trace", [True, False])
async def test_embedded_encoder_matches_a_direct_forward_pass(
    encoder_adapter: Path, trace: bool
) -> None:
    options = InferenceOptions(precision="fp32", batch_size=2, trace=trace)
    model = EmbeddedModel(encoder_adapter, options)
    assert isinstance(model, SentimentModel)
    try:
        lazy = await model.classify(HEADLINES)
        assert not model.scorer.traced  # one-shot use never pays for the trace
        await model.start()  # what the daemon calls: builds the trace for small passes
        assert model.scorer.traced is trace
        predictions = await model.classify(HEADLINES)
    finally:
        await model.close()
    assert [p.probs for p in predictions] == [p.probs for p in lazy]
    reference = _peft_encoder_probs(encoder_adapter, HEADLINES)
    assert len(predictions) == len(HEADLINES)
    for prediction, expected in zip(predictions, reference, strict=True):
        assert sum(prediction.probs) == pytest.approx(1.0, abs=1e-9)
        assert prediction.probs == pytest.approx(expected, abs=1e-5)
        assert prediction.label == Label(max(range(3), key=lambda i: expected[i]))
        assert prediction.confidence == max(prediction.probs)
        assert prediction.model_id == model.model_id


@pytest.mark.parametrize(("precision", "tolerance"), [("bf16", 0.03), ("int8", 0.05)])
async def test_fast_precisions_stay_close_to_fp32(
    encoder_adapter: Path, precision: str, tolerance: float
) -> None:
    model = EmbeddedModel(encoder_adapter, InferenceOptions(precision=precision))  # type: ignore[arg-type]
    try:
        predictions = await model.classify(HEADLINES)
    finally:
        await model.close()
    reference = _peft_encoder_probs(encoder_adapter, HEADLINES)
    for prediction, expected in zip(predictions, reference, strict=True):
        assert sum(prediction.probs) == pytest.approx(1.0, abs=1e-6)
        assert prediction.probs == pytest.approx(expected, abs=tolerance)


async def test_embedded_decoder_lora_and_prompt_tuning_match_peft(
    tiny_llama: Path, decoder_lora: Path, decoder_prompt_tuned: Path
) -> None:
    for adapter in (decoder_lora, decoder_prompt_tuned):
        model = EmbeddedModel(adapter, InferenceOptions(precision="fp32", batch_size=3))
        try:
            predictions = await model.classify(HEADLINES)
            assert not model.scorer.traced  # decoders run eagerly
        finally:
            await model.close()
        reference = _peft_decoder_probs(tiny_llama, adapter, HEADLINES)
        for prediction, expected in zip(predictions, reference, strict=True):
            assert prediction.probs == pytest.approx(expected, abs=1e-5)


async def test_concurrent_calls_share_forward_passes_and_keep_their_order(
    encoder_adapter: Path,
) -> None:
    model = EmbeddedModel(encoder_adapter, InferenceOptions(precision="fp32"))
    try:
        await model.start()
        alone = [p.probs for p in await model.classify(HEADLINES)]
        passes_before = model._batcher.batches
        calls = [model.classify([text]) for text in HEADLINES * 4]
        results = await asyncio.gather(*calls)
        passes = model._batcher.batches - passes_before
    finally:
        await model.close()
    got = [p for r in results for p in r[0].probs]
    assert got == pytest.approx([p for probs in alone * 4 for p in probs], abs=1e-5)
    assert passes < len(calls)  # requests that arrived while the model was busy were batched


async def test_coalesce_wait_gathers_a_trickle_into_one_pass(encoder_adapter: Path) -> None:
    model = EmbeddedModel(
        encoder_adapter, InferenceOptions(precision="fp32", batch_size=64), coalesce_wait=0.3
    )
    try:
        await model.start()

        async def later(delay: float, text: str) -> object:
            await asyncio.sleep(delay)
            return await model.classify([text])

        before = model._batcher.batches
        await asyncio.gather(*(later(0.02 * i, t) for i, t in enumerate(HEADLINES)))
        assert model._batcher.batches - before == 1
    finally:
        await model.close()


async def test_queue_limit_and_close_answer_model_unavailable(encoder_adapter: Path) -> None:
    model = EmbeddedModel(encoder_adapter, InferenceOptions(precision="fp32"), max_pending=3)
    await model.start()
    first = asyncio.ensure_future(model.classify(HEADLINES[:3]))
    await asyncio.sleep(0)  # queued, not yet taken by the worker
    with pytest.raises(ModelUnavailable, match="queue full"):
        await model.classify(HEADLINES[3:])
    await first
    await model.close()
    with pytest.raises(ModelUnavailable, match="closed"):
        await model.classify(HEADLINES[:1])


async def test_empty_input_and_model_load_is_lazy(encoder_adapter: Path) -> None:
    model = EmbeddedModel(encoder_adapter)
    assert model._scorer is None  # the id is known without loading torch weights
    assert model.model_id.startswith("embedded-encoder-lora-")
    assert await model.classify([]) == []
    await model.close()


def test_model_id_changes_with_weights_manifest_and_variant(
    encoder_adapter: Path, tmp_path: Path
) -> None:
    ids = {EmbeddedModel(encoder_adapter, InferenceOptions(precision="fp32")).model_id}
    assert EmbeddedModel(encoder_adapter, InferenceOptions(precision="fp32")).model_id in ids
    ids.add(EmbeddedModel(encoder_adapter, InferenceOptions(precision="int8")).model_id)
    ids.add(
        EmbeddedModel(encoder_adapter, InferenceOptions(precision="fp32"), merge=False).model_id
    )
    ids.add(
        EmbeddedModel(encoder_adapter, InferenceOptions(precision="fp32", max_length=32)).model_id
    )
    retrained = builders.make_encoder_adapter(tmp_path / "retrained", seed=99)
    ids.add(EmbeddedModel(retrained, InferenceOptions(precision="fp32")).model_id)
    edited = tmp_path / "edited"
    shutil.copytree(encoder_adapter, edited)
    manifest = json.loads((edited / "lorabot.json").read_text())
    manifest["max_length"] = 48
    (edited / "lorabot.json").write_text(json.dumps(manifest))
    ids.add(EmbeddedModel(edited, InferenceOptions(precision="fp32")).model_id)
    # a model card is documentation, not weights: it does not change answers
    (edited / "README.md").write_text("notes")
    assert EmbeddedModel(edited, InferenceOptions(precision="fp32")).model_id in ids
    assert len(ids) == 6


def test_build_embedded_reads_the_model_section(encoder_adapter: Path) -> None:
    settings = Settings().with_overrides(
        model={
            "backend": "embedded",
            "path": str(encoder_adapter),
            "precision": "int8",
            "forward_batch_size": 7,
            "max_length": 40,
        }
    )
    model = build_embedded(settings)
    assert model.options.precision == "int8"
    assert model.options.batch_size == 7
    assert model.options.max_length == 40
    with pytest.raises(ModelLoadError, match="model folder not found"):
        build_embedded(settings.with_overrides(model={"path": "/nonexistent/model"}))


def test_build_model_picks_the_embedded_backend(encoder_adapter: Path) -> None:
    from bot.assemble import build_model

    settings = Settings().with_overrides(
        model={"backend": "embedded", "path": str(encoder_adapter)}
    )
    assert isinstance(build_model(settings), EmbeddedModel)


def test_no_configuration_means_the_shipped_default_model(
    encoder_adapter: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import adapters.model.embedded as embedded

    assert Settings().model.backend == "embedded"
    monkeypatch.setattr(embedded, "default_model_dir", lambda: tmp_path / "missing")
    with pytest.raises(ModelLoadError, match="shipped default model is missing"):
        build_embedded(Settings())
    monkeypatch.setattr(embedded, "default_model_dir", lambda: encoder_adapter)
    assert build_embedded(Settings()).folder == encoder_adapter
