"""`lorabot serve` stops vLLM's whole process group on SIGINT and SIGTERM, also when it was
started in the background (where SIGINT arrives ignored and a KeyboardInterrupt never comes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.model.fake_vllm_process import make_env

ROOT = Path(__file__).resolve().parents[2]


def _alive(pid: int) -> bool:
    """Running (a zombie left for an absent init to reap counts as gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[0] != "Z"


def _group_alive(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what a shell's `&` gives a background job


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serve_in_the_background_stops_vllm_on_a_signal(
    signum: signal.Signals, encoder_merged: Path, tmp_path: Path
) -> None:
    env_dir = make_env(tmp_path / "fake-vllm-env")
    pgid_file = tmp_path / "pgid"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_VLLM_PGID_FILE": str(pgid_file)}
    serve = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve", "--model", str(encoder_merged),
         "--env", str(env_dir), "--port", "0", "--log", str(tmp_path / "vllm.log")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_ignore_sigint,
    )  # fmt: skip
    try:
        assert serve.stdout is not None
        first = serve.stdout.readline()  # the config lines come once vLLM serves the model
        assert first == "[model]\n", serve.stderr.read() if serve.stderr else first
        pgid, worker = (int(v) for v in pgid_file.read_text().split())
        assert _alive(worker) and pgid != os.getpgid(serve.pid)
        serve.send_signal(signum)
        try:
            code = serve.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"lorabot serve ignored {signum.name} and kept vLLM running")
        assert code == 0, serve.stderr.read() if serve.stderr else code
        deadline = time.monotonic() + 10
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _group_alive(pgid) == [] and not _alive(worker)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait(10)
        if pgid_file.exists():
            group = int(pgid_file.read_text().split()[0])
            if _group_alive(group):
                os.killpg(group, signal.SIGKILL)
