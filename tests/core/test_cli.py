"""What a user sees when something is wrong: one line, a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import re
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
        "bot.store, bot.assemble, strategies.vote, adapters.paper, adapters.model.lexicon; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_engine_and_the_replay_path_import_nothing_heavy() -> None:
    """The engine is pure and the replay path needs no network stack: importing them loads
    neither torch nor transformers nor aiohttp (issue 12)."""
    code = (
        "import sys, bot.engine, bot.backtest; "
        "heavy = [m for m in ('torch', 'transformers', 'aiohttp') if m in sys.modules]; "
        "assert not heavy, f'imported: {heavy}'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_only_assemble_imports_adapters_in_bot() -> None:
    """`bot/assemble.py` is the one module of `bot/` that names adapters (the command shells in
    `bot/commands/` may import an adapter's entry function inside a command)."""
    pattern = re.compile(r"^\s*(from|import) adapters", re.MULTILINE)
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "bot").rglob("*.py")
        if path.name != "assemble.py"
        and "commands" not in path.relative_to(ROOT / "bot").parts
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_bot_probes_no_ability_with_hasattr_or_getattr() -> None:
    """Every ability the core uses is in `bot/protocols.py`; nothing is probed at run time."""
    pattern = re.compile(r"\b(hasattr|getattr)\((broker|model|source|self\.model|s)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in (ROOT / "bot").rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


@pytest.mark.parametrize("command", ["status", "config"])
def test_commands_work_from_any_directory(tmp_path: Path, command: str) -> None:
    result = lorabot(command, cwd=tmp_path, env={"XDG_DATA_HOME": str(tmp_path / "d")})
    assert result.returncode == 0, result.stderr
