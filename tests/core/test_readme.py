"""The README's examples run as written (issue 13, point 7).

Every fenced block after a `<!-- test:run -->` marker is a promise that its commands work on a
fresh install, offline: each one runs here in a scratch directory (its own data and cache
folders) with a time cap and must exit 0. Lines of a block run in order in one shell, so a later
line may use what an earlier one wrote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MARKER = "<!-- test:run -->"


def marked_blocks(text: str) -> list[tuple[int, str]]:
    """(line number, the block's shell text) for every fenced block after a marker."""
    lines = text.splitlines()
    blocks: list[tuple[int, str]] = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != MARKER:
            index += 1
            continue
        start = index + 1
        while start < len(lines) and not lines[start].startswith("```"):
            start += 1
        end = start + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        body = [re.sub(r"\s+#\s.*$", "", line) for line in lines[start + 1 : end]]
        blocks.append((start + 1, "\n".join(line for line in body if line.strip())))
        index = end + 1
    return blocks


BLOCKS = marked_blocks((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_marks_blocks_to_run() -> None:
    assert len(BLOCKS) >= 3, "the README should mark the examples that run as written"


@pytest.mark.slow
@pytest.mark.parametrize(("line", "script"), BLOCKS, ids=[f"README:{n}" for n, _ in BLOCKS])
def test_a_marked_readme_block_runs_as_written(tmp_path: Path, line: int, script: str) -> None:
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
    }
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, (
        f"README.md:{line} failed ({result.returncode}):\n{script}\n{result.stderr[-3000:]}"
    )
