"""What a user sees when something is wrong: one line, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def lorabot(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        timeout=120,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_unknown_option(tmp_path: Path) -> None:
    result = lorabot("backtest", "--frobnicate", cwd=tmp_path)
    assert result.returncode == 2
    assert "--frobnicate" in one_line_error(result)


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("[risk]\nmax_daily_los = 0.1\n")
    line = one_line_error(lorabot("backtest", "--sample", "--config", str(config), cwd=tmp_path))
    assert "bad.toml" in line and "[risk] max_daily_los" in line


def test_malformed_bars_name_file_and_line(tmp_path: Path) -> None:
    bars = tmp_path / "bars.csv"
    bars.write_text(
        "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,0.5,1,1\n"
        "2024-01-01T00:01:00Z,1,2,0.5,oops,1\n"
    )
    line = one_line_error(
        lorabot("backtest", "--bars", str(bars), "--out", str(tmp_path / "o"), cwd=tmp_path)
    )
    assert "bars.csv:3" in line


def test_help_and_module_entry_point() -> None:
    result = lorabot("--help")
    assert result.returncode == 0
    for command in ("backtest", "run", "status", "train", "classify", "news", "exchange-sim"):
        assert command in result.stdout


def test_importing_bot_does_not_import_torch() -> None:
    code = (
        "import sys, bot, bot.cli, bot.engine, bot.backtest, bot.daemon, bot.signals, "
        "bot.store, bot.models, strategies.vote, adapters.paper, adapters.model.lexicon; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("command", ["status", "config"])
def test_commands_work_from_any_directory(tmp_path: Path, command: str) -> None:
    result = lorabot(command, cwd=tmp_path, env={"XDG_DATA_HOME": str(tmp_path / "d")})
    assert result.returncode == 0, result.stderr
