"""`lorabot backtest` builds no console: it never listens on a socket and never imports
`bot.console` (the console is the daemon's, `bot/daemon.py`)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.core.store_daemon import environment

SCRIPT = """
import json, socket, sys
listened = []
real_listen = socket.socket.listen
def listen(self, *args):
    listened.append(self.getsockname())
    return real_listen(self, *args)
socket.socket.listen = listen
from bot.cli import main
try:
    main(["backtest", "--sample", "--out", sys.argv[1]])
finally:
    consoles = sorted(m for m in sys.modules if m.startswith("bot.console"))
    print(json.dumps({"listened": [str(a) for a in listened], "console": consoles}))
"""


@pytest.mark.slow  # the sample backtest with its luck figures: about 25 s
def test_a_backtest_listens_on_nothing(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "run")],
        env=environment(tmp_path / "xdg"),
        capture_output=True,
        timeout=240,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert report == {"listened": [], "console": []}
    assert (tmp_path / "run" / "report.html").is_file()
