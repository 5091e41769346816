"""The Bybit commands' click shells live in bot/commands/ (issue 12.8): the adapter imports no
click, and the shells import no adapter (nor aiohttp) until they run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_bybit_adapter_imports_no_click() -> None:
    modules = sorted(
        "adapters.bybit." + ".".join(p.relative_to(ROOT / "adapters/bybit").with_suffix("").parts)
        for p in (ROOT / "adapters/bybit").rglob("*.py")
        if p.name != "__init__.py"
    )
    done = _python(
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print('click' in sys.modules)"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_command_shells_load_no_adapter_until_they_run() -> None:
    done = _python(
        "import sys\n"
        "from bot.cli import COMMANDS\n"
        "assert COMMANDS['download-data'][0] == 'bot.commands.download_data:download_data'\n"
        "assert COMMANDS['exchange-sim'][0] == 'bot.commands.exchange_sim:exchange_sim'\n"
        "import bot.commands.download_data, bot.commands.exchange_sim\n"
        "print(sorted(m for m in sys.modules if m.startswith(('adapters', 'aiohttp', 'torch'))))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_download_data_help_and_a_bad_date_are_one_line() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "bot", "download-data", "--help"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert help_text.returncode == 0 and "--symbol" in help_text.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "bot", "download-data", "--symbol", "BTCUSDT", "--from", "soon"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "'soon' is not a date" in bad.stderr
