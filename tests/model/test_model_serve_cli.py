"""`lorabot classify`, the `lorabot serve` plan read from manifests, and the vLLM env builder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from adapters.model import vllm_env
from adapters.model.server import ServeError, ServeSpec, parse_adapter, plan
from bot.commands.classify import classify
from bot.manifest import embedded_base_path
from tests.model import builders
from tests.model.conftest import HEADLINES

ROOT = Path(__file__).resolve().parents[2]


def _lines(output: str) -> list[list[str]]:
    return [line.split(" ", 5) for line in output.splitlines()]


def test_classify_reads_stdin_and_prints_one_line_per_headline(encoder_adapter: Path) -> None:
    runner = CliRunner()
    stdin = "\n".join([HEADLINES[0], "", HEADLINES[1], "   ", HEADLINES[2]]) + "\n"
    result = runner.invoke(classify, ["--model", str(encoder_adapter), "--echo"], input=stdin)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    # one result line per input line: a blank line answers with an empty line (it used to be
    # dropped, so output line N no longer answered input line N)
    assert len(lines) == 5 and lines[1] == "" and lines[3] == ""
    rows = _lines("\n".join(lines[i] for i in (0, 2, 4)))
    assert [r[5] for r in rows] == HEADLINES[:3]
    for label, confidence, *probs in (r[:5] for r in rows):
        values = [float(p) for p in probs]
        assert label in ("bearish", "neutral", "bullish")
        assert sum(values) == pytest.approx(1.0, abs=2e-4)
        assert float(confidence) == max(values)
        assert ("bearish", "neutral", "bullish")[values.index(max(values))] == label


def test_classify_keeps_blank_lines_of_a_pipe_in_json_and_in_chunks(encoder_adapter: Path) -> None:
    runner = CliRunner()
    stdin = "\n".join(["", HEADLINES[0], "", "", HEADLINES[1], HEADLINES[2], ""]) + "\n"
    args = ["--model", str(encoder_adapter), "--json", "--chunk", "2"]
    result = runner.invoke(classify, args, input=stdin)
    assert result.exit_code == 0, result.output
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(answers) == 7
    assert [a and a["text"] for a in answers] == [
        None, HEADLINES[0], None, None, HEADLINES[1], HEADLINES[2], None
    ]  # fmt: skip


def test_classify_arguments_json_and_the_lexicon_backend(encoder_adapter: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(classify, ["--model", str(encoder_adapter), "--json", HEADLINES[0]])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["text"] == HEADLINES[0]
    assert record["model_id"].startswith("embedded-encoder-lora-")
    assert set(record["probs"]) == {"bearish", "neutral", "bullish"}
    lexicon = runner.invoke(classify, ["--backend", "lexicon", "Bitcoin soars to a record high"])
    assert lexicon.exit_code == 0
    assert lexicon.stdout.split()[0] == "bullish"
    assert len(lexicon.stdout.split()) == 5


def test_classify_command_line_end_to_end(encoder_adapter: Path, tmp_path: Path) -> None:
    """As a user runs it: the lazily-loaded command, stdout only results, errors as one line."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--model", str(encoder_adapter)],
        input="\n".join(HEADLINES) + "\n", capture_output=True, text=True, cwd=tmp_path, env=env,
        timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert len(run.stdout.splitlines()) == len(HEADLINES)
    missing = subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--model", str(tmp_path / "nope"), "x"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120,
    )  # fmt: skip
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr.strip().count("\n") == 0
    assert "model folder not found" in missing.stderr


def test_serve_plan_for_decoder_lora_adapters(
    tiny_llama: Path, decoder_lora: Path, tmp_path: Path
) -> None:
    second = builders.make_decoder_adapter(tiny_llama, tmp_path / "second", seed=5)
    served = plan(
        ServeSpec(model=decoder_lora, adapters=(("b", second),), name="a", port=8123), "py"
    )
    argv = served.argv
    assert argv[:3] == ["py", "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--model") + 1] == str(tiny_llama)
    assert argv[argv.index("--dtype") + 1] == "float32"
    assert "--enable-lora" in argv and argv[argv.index("--max-lora-rank") + 1] == "8"
    lora = argv[argv.index("--lora-modules") + 1 :][:2]
    assert lora == [f"a={decoder_lora.resolve()}", f"b={second.resolve()}"]
    assert served.adapter_names == ("a", "b") and served.default_name == "a"
    assert served.env["VLLM_CPU_KVCACHE_SPACE"] == "1"


def test_serve_plan_for_a_merged_encoder(encoder_merged: Path) -> None:
    served = plan(ServeSpec(model=encoder_merged, eager=False), "py")
    assert served.argv[served.argv.index("--model") + 1] == str(encoder_merged.resolve())
    assert "--enable-lora" not in served.argv and "--enforce-eager" not in served.argv
    assert served.model_name == "enc-merged" and served.family == "encoder"


def test_serve_refuses_what_vllm_cannot_serve(
    decoder_prompt_tuned: Path, encoder_adapter: Path, decoder_lora: Path, tmp_path: Path
) -> None:
    with pytest.raises(ServeError, match="runs on the embedded backend"):
        plan(ServeSpec(model=decoder_prompt_tuned))
    with pytest.raises(ServeError, match="runs on the embedded backend"):
        plan(ServeSpec(model=encoder_adapter))  # an encoder LoRA must be exported --merge
    other_base = builders.make_tiny_llama(tmp_path / "other-llama")
    foreign = builders.make_decoder_adapter(other_base, tmp_path / "foreign", seed=6)
    with pytest.raises(ServeError, match="must share one base"):
        plan(ServeSpec(model=decoder_lora, adapters=(("f", foreign),)))
    with pytest.raises(ServeError, match="unique"):
        plan(ServeSpec(model=decoder_lora, name="x", adapters=(("x", decoder_lora),)))
    with pytest.raises(ServeError, match="NAME=DIR"):
        parse_adapter("no-equals-sign")


def test_vllm_env_path_is_named_by_versions_and_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(vllm_env.ENV_VARIABLE, raising=False)
    default = vllm_env.default_env_path()
    assert default == ROOT / f".vllm-env-{vllm_env.VLLM_VERSION}-torch{vllm_env.TORCH_VERSION}"
    monkeypatch.setenv(vllm_env.ENV_VARIABLE, str(tmp_path / "env"))
    assert vllm_env.default_env_path() == tmp_path / "env"
    assert vllm_env.resolve_env_path(str(tmp_path / "x")) == tmp_path / "x"
    # a folder without the finished-marker is never reused, however complete it looks
    unfinished = tmp_path / "unfinished"
    (unfinished / "bin").mkdir(parents=True)
    assert "not a finished vLLM environment" in (vllm_env.env_problem(unfinished) or "")
    # a finished-looking env whose python lacks vllm-cpu is rejected too
    fake = tmp_path / "fake"
    (fake / "bin").mkdir(parents=True)
    (fake / "bin" / "python").symlink_to(sys.executable)
    (fake / vllm_env.MARKER).write_text("{}")
    assert "its python fails" in (vllm_env.env_problem(fake) or "")
    assert vllm_env.main(["check", "--path", str(fake)]) == 1


@pytest.mark.vllm
def test_the_project_vllm_env_is_ready() -> None:
    """`make test` builds it first; `check` then finds it without rebuilding."""
    env = vllm_env.ensure()
    assert vllm_env.env_problem(env) is None
    marker = json.loads((env / vllm_env.MARKER).read_text())
    assert marker["vllm_cpu"] == vllm_env.VLLM_VERSION
    assert shutil.which("python", path=str(env / "bin")) is not None
    assert embedded_base_path().is_dir()


async def test_classify_answers_from_the_signal_cache(
    encoder_adapter: Path, tmp_path: Path
) -> None:
    from adapters.model.embedded import EmbeddedModel
    from bot.commands.classify import _cached_classify
    from bot.signals import SignalCache

    model = EmbeddedModel(encoder_adapter)
    cache = SignalCache(tmp_path / "signals.sqlite")
    texts = [HEADLINES[0], HEADLINES[1], HEADLINES[0].upper()]  # the third is the first, shouted
    first = await _cached_classify(model, cache, texts)
    passes = model._batcher.batches
    assert passes == 1 and first[0] == first[2]
    cache.close()
    reopened = SignalCache(tmp_path / "signals.sqlite")  # persisted: a new run starts warm
    again = await _cached_classify(model, reopened, texts)
    assert model._batcher.batches == passes  # the model was not asked again
    assert [p.probs for p in again] == [p.probs for p in first]
    reopened.close()
    await model.close()
