"""The ONNX Runtime path of the embedded model (issue 20, targets 3 and 5): the shipped default
exported for real, loaded with onnxruntime + tokenizers, compared with the torch backend.

The graph is exported once per module (about 10-20 s on 2 cores), so the tests that need it are
slow; the cheap ones (planning, fallback) are not.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from adapters.model.embedded import EmbeddedModel, build_embedded
from adapters.model.inference import InferenceOptions, Scorer
from adapters.model.inference_loader import load_model
from adapters.model.onnx_graph import GRAPH, META, calibration_headlines, check_graph, graph_dir
from adapters.model.onnx_scorer import OnnxScorer
from bot.config import Settings
from bot.manifest import default_model_dir
from tests.model.conftest import HEADLINES

ROOT = Path(__file__).resolve().parents[2]
ONNX = InferenceOptions(runtime="onnx")
TORCH_FP32 = InferenceOptions(precision="fp32")
# the batch: the sample headlines (many share a token length) and the test headlines
MIXED = [*calibration_headlines(), *HEADLINES]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A graph cache holding the default model's fp32 graph, exported by the product code."""
    cache = tmp_path_factory.mktemp("graphs")
    model = EmbeddedModel(default_model_dir(), ONNX, graph_cache=cache)
    assert model.scorer.variant == "onnx-fp32-merged-len64"
    return cache


@pytest.fixture(scope="module")
def torch_fp32() -> EmbeddedModel:
    return EmbeddedModel(default_model_dir(), TORCH_FP32)


def _copy_graphs(graphs: Path, into: Path) -> Path:
    shutil.copytree(graphs, into)
    return into


@pytest.mark.slow
def test_onnx_gives_the_torch_labels_and_probabilities(
    graphs: Path, torch_fp32: EmbeddedModel
) -> None:
    model = EmbeddedModel(default_model_dir(), ONNX, graph_cache=graphs)
    assert model.runtime == "onnx" and model.model_id != torch_fp32.model_id
    got = model.classify_sync(MIXED)
    want = torch_fp32.classify_sync(MIXED)
    assert [p.label for p in got] == [p.label for p in want]
    for ours, theirs in zip(got, want, strict=True):
        assert max(abs(a - b) for a, b in zip(ours.probs, theirs.probs, strict=True)) < 1e-5
        assert ours.model_id == model.model_id


@pytest.mark.slow
def test_a_headline_gets_the_same_answer_to_the_bit_alone_and_in_any_batch(graphs: Path) -> None:
    """The signal cache stores one answer per text: the batch must not change it, not even in
    the last bit (texts are run in unpadded groups of one length; a batch this large also goes
    to the multi-thread session while a headline alone runs on the one-thread one)."""
    model = EmbeddedModel(default_model_dir(), ONNX, graph_cache=graphs)
    scorer = model.scorer
    assert isinstance(scorer, OnnxScorer)
    together = scorer.probs(MIXED * 3)
    lengths = [len(ids) for ids in scorer.encode(MIXED)]
    assert len(set(lengths)) < len(lengths)  # some batches really hold several rows
    for index, text in enumerate(MIXED):
        alone = scorer.probs([text])[0]
        assert alone == together[index] == together[index + len(MIXED)]
    assert scorer.probs(list(reversed(MIXED))) == list(reversed(together[: len(MIXED)]))


@pytest.mark.slow
def test_the_calibration_temperature_is_applied_as_the_torch_backend_does(graphs: Path) -> None:
    folder = default_model_dir()
    model = EmbeddedModel(folder, ONNX, graph_cache=graphs)
    directory = graph_dir(graphs, model.model_id)
    onnx = OnnxScorer(directory, "fp32", 64, temperature=2.5)
    loaded = load_model(folder)
    loaded.manifest = loaded.manifest.model_copy(update={"temperature": 2.5})
    torch_scorer = Scorer(loaded, TORCH_FP32)
    plain = OnnxScorer(directory, "fp32", 64, temperature=1.0).probs(HEADLINES)
    for ours, theirs, untempered in zip(
        onnx.probs(HEADLINES), torch_scorer.probs(HEADLINES), plain, strict=True
    ):
        assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) < 1e-5
        # softmax(log p / T) of the untempered answer: the same rule as `bot.manifest.temper`
        logs = [math.log(p) / 2.5 for p in untempered]
        total = sum(math.exp(v) for v in logs)
        assert all(abs(a - math.exp(v) / total) < 1e-5 for a, v in zip(ours, logs, strict=True))


@pytest.mark.slow
def test_a_changed_adapter_never_loads_the_old_graph(graphs: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file, save_file

    folder = tmp_path / "changed"
    shutil.copytree(default_model_dir(), folder)
    before = EmbeddedModel(folder, ONNX, graph_cache=graphs)  # a copy: the same id
    assert before.model_id == EmbeddedModel(default_model_dir(), ONNX, graph_cache=graphs).model_id
    weights = folder / "adapter_model.safetensors"
    state = load_file(str(weights))
    head = "base_model.model.classifier.modules_to_save.default.bias"
    head = head if head in state else next(k for k in state if k.endswith("classifier.bias"))
    state[head] = state[head] + torch.tensor([3.0, 0.0, -3.0])  # push every answer to bearish
    save_file(state, str(weights))
    cache = _copy_graphs(graphs, tmp_path / "cache")
    after = EmbeddedModel(folder, ONNX, graph_cache=cache)
    assert after.model_id != before.model_id
    assert not graph_dir(cache, after.model_id).exists()
    # plant the old graph under the new id, as a stale cache would hold it: it is refused
    shutil.copytree(graph_dir(cache, before.model_id), graph_dir(cache, after.model_id))
    assert "another model" in (check_graph(graph_dir(cache, after.model_id), after.model_id) or "")
    got = after.classify_sync(HEADLINES)
    want = EmbeddedModel(folder, TORCH_FP32).classify_sync(HEADLINES)
    assert [p.label for p in got] == [p.label for p in want]
    assert check_graph(graph_dir(cache, after.model_id), after.model_id) is None


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["truncated", "garbage with a matching graph.json"])
def test_a_corrupt_cached_graph_is_exported_again(
    graphs: Path, tmp_path: Path, damage: str
) -> None:
    cache = _copy_graphs(graphs, tmp_path / "cache")
    model = EmbeddedModel(default_model_dir(), ONNX, graph_cache=cache)
    directory = graph_dir(cache, model.model_id)
    graph = directory / GRAPH
    if damage == "truncated":
        graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])
        assert "corrupt" in (check_graph(directory, model.model_id) or "")
    else:  # passes the size and hash check, so onnxruntime itself must refuse it
        import hashlib

        graph.write_bytes(b"not an onnx graph" * 100)
        meta = json.loads((directory / META).read_text())
        digest = hashlib.sha256(graph.read_bytes()).hexdigest()
        meta.update(size=graph.stat().st_size, sha256=digest)
        (directory / META).write_text(json.dumps(meta))
        assert check_graph(directory, model.model_id) is None
    with capture_logs() as logs:
        answers = model.classify_sync(HEADLINES)
    assert model.runtime == "onnx"
    exports = [entry for entry in logs if entry["event"] == "onnx_export"]
    assert len(exports) == 1
    why = "corrupt" if damage == "truncated" else "onnxruntime cannot load"
    assert why in exports[0]["reason"]
    assert check_graph(directory, model.model_id) is None  # exported again, in place
    reference = EmbeddedModel(default_model_dir(), ONNX, graph_cache=graphs)
    assert answers == reference.classify_sync(HEADLINES)


@pytest.mark.slow
def test_classify_in_a_fresh_process_imports_no_torch(graphs: Path, tmp_path: Path) -> None:
    """The warm path: the graph is cached, `lorabot classify` answers without importing torch
    (or transformers), and gives the answer the in-process model gives."""
    code = (
        "import runpy, sys\n"
        "sys.argv = ['lorabot', 'classify', '--no-cache', sys.argv[1]]\n"
        "try:\n    runpy.run_module('bot', run_name='__main__')\n"
        "except SystemExit as done:\n    assert not done.code, done.code\n"
        "print('IMPORTED', 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LORABOT_ONNX_CACHE": str(graphs)}
    result = subprocess.run(
        [sys.executable, "-c", code, HEADLINES[0]],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[-1] == "IMPORTED False False"
    expected = EmbeddedModel(default_model_dir(), ONNX, graph_cache=graphs).classify_sync(
        HEADLINES[:1]
    )[0]
    assert lines[0].split()[:2] == [expected.label.word, f"{expected.confidence:.4f}"]


@pytest.mark.slow
def test_static_int8_is_batch_independent_and_keeps_clear_labels(
    graphs: Path, torch_fp32: EmbeddedModel, tmp_path: Path
) -> None:
    cache = _copy_graphs(graphs, tmp_path / "cache")
    model = EmbeddedModel(default_model_dir(), InferenceOptions(runtime="onnx", precision="int8"),
                          graph_cache=cache)  # fmt: skip
    scorer = model.scorer
    assert scorer.variant == "onnx-int8-merged-len64"
    together = scorer.probs(MIXED)
    assert all(scorer.probs([text])[0] == together[i] for i, text in enumerate(MIXED))
    fp32 = torch_fp32.classify_sync(HEADLINES[:3])  # the three clear ones
    assert [p.label for p in model.classify_sync(HEADLINES[:3])] == [p.label for p in fp32]


def test_the_config_default_is_onnx_and_the_torch_runtime_keeps_todays_model_id(
    tmp_path: Path,
) -> None:
    settings = Settings().with_overrides(store={"cache_dir": str(tmp_path)})
    model = build_embedded(settings)
    assert model.runtime == "onnx" and model.options.runtime == "onnx"
    torch_model = build_embedded(settings.with_overrides(model={"runtime": "torch"}))
    assert torch_model.runtime == "torch"
    assert torch_model.model_id == EmbeddedModel(default_model_dir()).model_id
    assert model.model_id != torch_model.model_id


def test_models_the_export_does_not_cover_run_on_torch(decoder_lora: Path) -> None:
    for model in (
        EmbeddedModel(default_model_dir(), InferenceOptions(runtime="onnx", precision="bf16")),
        EmbeddedModel(default_model_dir(), ONNX, merge=False),
        EmbeddedModel(decoder_lora, ONNX),
    ):
        assert model.runtime == "torch"
        torch_options = InferenceOptions(precision=model.options.precision)
        same = EmbeddedModel(model.folder, torch_options, merge=model._merge)
        assert model.model_id == same.model_id


def test_an_export_that_fails_falls_back_to_torch_with_one_log_line(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the graph cache should be")
    model = EmbeddedModel(default_model_dir(), ONNX, graph_cache=blocked)
    assert model.runtime == "onnx"
    with capture_logs() as logs:
        answers = model.classify_sync(HEADLINES[:2])
    assert model.runtime == "torch"
    torch_id = EmbeddedModel(default_model_dir()).model_id
    assert model.model_id == torch_id and all(p.model_id == torch_id for p in answers)
    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [entry["event"] for entry in warnings] == ["onnx_unavailable_torch"]
    assert str(blocked) in warnings[0]["error"]


@pytest.mark.slow
def test_classify_runtime_option_picks_torch(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--json", "--no-cache", "--runtime", "torch",
         HEADLINES[0]],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["model_id"] == EmbeddedModel(default_model_dir()).model_id
