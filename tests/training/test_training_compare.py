"""`lorabot compare` trains methods on one split and reports the trade-offs: QLoRA's 4-bit base
shows as less weight memory than LoRA on the same model, each method measured in its own process."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import TrainingConfig
from training.compare import COLUMNS, compare_methods, read_split, render_table
from training.pipeline import DataRequest

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_compare_in_subprocesses_reports_qlora_memory_against_lora(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    cfg = tiny_config(base=str(tiny_bert), epochs=1, num_threads=1)
    out = tmp_path / "cmp"
    results = compare_methods(
        cfg, DataRequest(str(news_csv)), out, ["lora", "qlora"], progress=False
    )
    rows = {r["method"]: r for r in results}
    assert set(rows) == {"lora", "qlora"} and all("error" not in r for r in results)
    lora, qlora = rows["lora"], rows["qlora"]
    # Same model, same adapter: same trainable count; the base's linear layers are 4-bit.
    assert lora["trainable"] == qlora["trainable"]
    assert qlora["weights_mb"] < lora["weights_mb"]
    for row in results:
        assert row["peak_rss_mb"] > 50  # a process that imported torch
        assert row["latency_ms"] > 0 and row["seconds_per_epoch"] > 0
        # examples/s is the rows gone through over the loop's own seconds
        through = row["examples_per_second"] * row["train_seconds"]
        n_train = len(read_split(out / "split").train)
        assert through == pytest.approx(n_train * row["epochs"], rel=1e-6)
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["macro_f1"] <= 1
        assert Path(row["folder"], "lorabot.json").is_file()
    document = json.loads((out / "compare.json").read_text())
    assert document["in_process"] is False
    assert [r["method"] for r in document["results"]] == ["lora", "qlora"]
    assert (out / "compare.png").read_bytes().startswith(PNG)
    table = (out / "compare.md").read_text()
    assert table.splitlines()[0].startswith("| method | precision | trainable |")
    assert "| qlora |" in table
    # The same split for every method, on disk.
    assert (out / "split" / "train.jsonl").is_file() and (out / "split" / "valid.jsonl").is_file()


def test_compare_in_process_and_failures_are_kept(
    tiny_bert: Path,
    news_csv: Path,
    tmp_path: Path,
    tiny_config: Callable[..., TrainingConfig],
) -> None:
    # Adapter targets that match nothing fail that method alone; the others still report.
    cfg = tiny_config(base=str(tiny_bert), epochs=1, adapter_targets=("no_such_module",))
    out = tmp_path / "cmp"
    results = compare_methods(
        cfg, DataRequest(str(news_csv)), out, ["lora", "adapter"], in_process=True, progress=False
    )
    assert "error" not in results[0]
    lora = results[0]
    n_train = len(read_split(out / "split").train)
    through = lora["examples_per_second"] * lora["train_seconds"]
    assert through == pytest.approx(n_train * lora["epochs"], rel=1e-6)
    assert "no_such_module" in results[1]["error"]
    table = render_table(results)
    assert "| adapter | failed:" in table
    assert len(table.splitlines()[0].split("|")) == len(COLUMNS) + 2
    assert (out / "compare.png").read_bytes().startswith(PNG)
    with pytest.raises(Exception, match="--overwrite"):
        compare_methods(cfg, DataRequest(str(news_csv)), out, ["lora"], in_process=True)
