"""Shared pieces of the hyperopt tests: the bundled sample, a lexicon config, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEWS = ROOT / "bot" / "sample" / "news.jsonl"
BARS = ROOT / "bot" / "sample" / "bars_btcusdt_15m.csv"
WINDOW = ["--from", "2024-01-01T00:00Z", "--to", "2024-01-13T00:00Z"]


def lorabot(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def lexicon_config(tmp_path: Path) -> Path:
    """A config on the lexicon model (no torch to load), the signal cache in tmp_path."""
    path = tmp_path / "config.toml"
    path.write_text(
        f'[store]\ndata_dir = "{tmp_path / "data"}"\ncache_dir = "{tmp_path / "cache"}"\n'
        '[model]\nbackend = "lexicon"\n'
        '[strategy]\nreevaluate_interval = "1h"\n'
    )
    return path


def hyperopt_args(config: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--config", str(config), "hyperopt", "--news", str(NEWS), "--bars", str(BARS),
        "--no-progress", "--out", str(out), *WINDOW, *extra,
    ]  # fmt: skip
