"""`lorabot classify` cold start (issue 20, target 5): what a fresh process must not import."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEADLINE = "Bitcoin surges as ETF inflows jump"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_classify_path_imports_neither_the_store_nor_torch() -> None:
    """The store (sqlmodel + sqlalchemy, about a second on a loaded 2-core machine) is built by
    the daemon and the backtest, never by `classify`; torch loads only when the model must
    answer."""
    result = _python(
        "import sys, bot.commands.classify, bot.assemble, bot.signals, bot.engine, bot.journal; "
        "heavy = [m for m in ('sqlmodel', 'sqlalchemy', 'torch') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.slow
def test_a_cached_answer_needs_no_torch(tmp_path: Path) -> None:
    """The second `classify` of a headline answers from the signal cache; a torch that cannot
    be imported (first on the path) proves the model was never loaded."""
    poisoned = tmp_path / "poisoned"
    poisoned.mkdir()
    (poisoned / "torch.py").write_text("raise ImportError('torch imported on a cache hit')\n")
    env = {
        **os.environ,
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }

    def classify(path: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bot", "classify", HEADLINE],
            cwd=tmp_path,
            env={**env, "PYTHONPATH": path},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    first = classify(str(ROOT))
    assert first.returncode == 0, first.stderr[-2000:]
    again = classify(f"{poisoned}{os.pathsep}{ROOT}")
    assert again.returncode == 0, again.stderr[-2000:]
    assert again.stdout == first.stdout
    assert first.stdout.split()[0] == "bullish"
