"""Bad input to `--task impact`: one clear line each, and what was left out is counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.config import Settings, TrainingConfig
from bot.errors import InputError, UserError
from training.impact.cli import ImpactRequest, run
from training.impact.heads import HeadSettings

from .files import write_momentum_files

ROOT = Path(__file__).resolve().parents[2]
SPLIT = datetime(2022, 3, 10, tzinfo=UTC)
QUICK = HeadSettings(epochs=5)


def _request(news: Path, bars: Path, out: Path, **changes: object) -> ImpactRequest:
    values: dict[str, object] = {
        "news": news,
        "bars": {"BTCUSDT": bars},
        "out": out,
        "split_date": SPLIT,
        "models": ("numbers",),
    }
    values.update(changes)
    return ImpactRequest(**values)  # type: ignore[arg-type]


def _lorabot(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_a_horizon_shorter_than_a_bar(tmp_path: Path) -> None:
    news, bars, _ = write_momentum_files(tmp_path)
    with pytest.raises(UserError) as caught:
        run(Settings(), TrainingConfig(), _request(news, bars, tmp_path / "o", horizon="30m"))
    assert (
        str(caught.value) == "--horizon: BTCUSDT: horizon 30m is shorter than the bars' interval 1h"
    )


def test_a_symbol_without_bars(tmp_path: Path) -> None:
    news, bars, _ = write_momentum_files(tmp_path)
    with pytest.raises(UserError) as caught:
        run(Settings(), TrainingConfig(), _request(news, bars, tmp_path / "o", symbol="ETHUSDT"))
    assert str(caught.value) == "--symbol ETHUSDT: no bars given for it (--bars given for BTCUSDT)"
    empty = tmp_path / "empty.csv"
    empty.write_text("timestamp,open,high,low,close,volume\n")
    with pytest.raises(InputError, match=r"empty.csv: 0 bars for BTCUSDT"):
        run(Settings(), TrainingConfig(), _request(news, empty, tmp_path / "o"))


@pytest.mark.slow
def test_bars_that_do_not_cover_the_news_span(tmp_path: Path) -> None:
    news, bars, n_items = write_momentum_files(tmp_path)
    lines = bars.read_text().splitlines()
    # bars from Jan 16 on: items in the first 30 days of bars have no history; the file also
    # stops on Mar 30, before the last items
    kept = [lines[0]] + [line for line in lines[1:] if "2022-01-16" <= line[:10] < "2022-03-30"]
    short = tmp_path / "short.csv"
    short.write_text("\n".join(kept) + "\n")
    said: list[str] = []
    document = run(
        Settings(),
        TrainingConfig(),
        _request(news, short, tmp_path / "o"),
        head=QUICK,
        echo=said.append,
    )
    counts = document["counts"]
    assert counts["news_items"] == n_items
    assert counts["no_history"] > 0 and counts["after_bars"] + counts["beyond_end"] > 0
    left = n_items - counts["labelled"]
    warning = [line for line in said if line.startswith("warning:")]
    assert len(warning) == 1
    assert warning[0].startswith(f"warning: {left} of {n_items} items left out: ")
    assert "without 30 days of bars before them" in warning[0]
    assert "received after the last bar" in warning[0] or "past the last bar" in warning[0]
    assert document["left_out"] == warning[0].removeprefix("warning: ")
    # bars that cover none of it: an error, with the reasons
    none = tmp_path / "none.csv"
    none.write_text("\n".join([lines[0], *lines[1:200]]) + "\n")
    with pytest.raises(InputError, match=r"^no headline could be labelled against BTCUSDT's"):
        run(Settings(), TrainingConfig(), _request(news, none, tmp_path / "o"))


@pytest.mark.slow
def test_the_command_line(tmp_path: Path) -> None:
    news, bars, _ = write_momentum_files(tmp_path)
    out = tmp_path / "out"
    common = ["train", "--task", "impact", "--news", str(news), "--bars", f"BTCUSDT={bars}"]
    bad = _lorabot(*common, "--horizon", "30m", "--out", str(out))
    assert bad.returncode != 0
    assert bad.stderr.strip().splitlines()[-1] == (
        "lorabot: error: --horizon: BTCUSDT: horizon 30m is shorter than the bars' interval 1h"
    )
    done = _lorabot(
        *common,
        "--split-date",
        "2022-03-10",
        "--impact-models",
        "numbers",
        "--out",
        str(out),
        "--no-progress",
    )
    assert done.returncode == 0, done.stderr
    assert "| numbers |" in done.stdout
    report = json.loads((out / "impact_report.json").read_text())
    assert report["models"]["numbers"]["accuracy"] > 0.8
    assert report["split"]["folds"][0]["train_before"] == "2022-03-10T00:00:00Z"
