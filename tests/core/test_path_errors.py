"""Every path argument of every command, given a path that is missing, of the wrong kind (a file
for a folder, a folder for a file, a path under a file), or holding garbage, answers with one
clean line on stderr and an exit code that is not 70, lorabot's "internal error" (issue 13.5).

Bybit's endpoints and the feeds are closed ports on 127.0.0.1: nothing reaches the internet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Placeholders, replaced per test by paths in its temp folder.
MISSING, FOLDER, FILE, GARBAGE, UNDER_FILE, EMPTY, BAD_MODEL = (
    "<missing>",
    "<folder>",
    "<file>",
    "<garbage>",
    "<under-file>",
    "<empty-folder>",
    "<bad-model>",
)
GOOD_DATA = "<good-data>"

READ_KINDS = (MISSING, FOLDER, GARBAGE, UNDER_FILE)
MODEL_KINDS = (MISSING, FILE, EMPTY, BAD_MODEL)
WRITE_KINDS = (FILE, UNDER_FILE)
WRITE_FILE_KINDS = (FOLDER, UNDER_FILE)

CASES: list[tuple[str, ...]] = [
    *(("train", "--data", kind, "--out", "out", "--limit", "5") for kind in READ_KINDS),
    *(("train", "--data", GOOD_DATA, "--valid", kind, "--out", "out") for kind in READ_KINDS),
    *(("train", "--data", GARBAGE, "--format", fmt, "--out", "out") for fmt in ("csv", "jsonl")),
    *(("train", "--data", GOOD_DATA, "--out", kind) for kind in WRITE_KINDS),
    *(("compare", "--data", GOOD_DATA, "--out", kind) for kind in WRITE_KINDS),
    *(("eval", "--model", kind, "--data", GOOD_DATA) for kind in MODEL_KINDS),
    *(("eval", "--model", EMPTY, "--data", kind) for kind in READ_KINDS),
    *(("eval", "--model", EMPTY, "--data", GOOD_DATA, "--json", kind) for kind in WRITE_FILE_KINDS),
    *(("export", "--model", kind, "--out", "exported") for kind in MODEL_KINDS),
    *(("export", "--model", EMPTY, "--out", kind) for kind in WRITE_KINDS),
    *(("serve", "--model", kind) for kind in MODEL_KINDS),
    *(("serve", "--model", EMPTY, "--log", kind) for kind in WRITE_FILE_KINDS),
    *(("classify", "--backend", "embedded", "--model", kind, "Bitcoin up") for kind in MODEL_KINDS),
    *(
        ("news", "--once", "--no-model", "--feed", "<dead-feed>", "--record", kind)
        for kind in WRITE_FILE_KINDS
    ),
    *(("convert-news", kind, "out.jsonl") for kind in READ_KINDS),
    *(("convert-news", GOOD_DATA, kind) for kind in WRITE_FILE_KINDS),
    *(
        ("download-data", "--symbol", "BTCUSDT", "--from", "2024-01-01", "--out", kind)
        for kind in WRITE_FILE_KINDS
    ),
    *(
        ("run", "--mode", "paper", "--no-news", "--replay-news", kind)
        for kind in (*READ_KINDS, FILE)
    ),
    *(
        ("run", "--mode", "paper", "--no-news", "--replay-bars", kind)
        for kind in (*READ_KINDS, FILE)
    ),
]
CONFIG_CASES: list[tuple[str, ...]] = [
    (command, "--config", kind) for command in ("status", "kill", "config") for kind in READ_KINDS
]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("paths")
    (root / "folder").mkdir()
    (root / "empty").mkdir()
    (root / "file.txt").write_text("hello\n", encoding="utf-8")
    (root / "garbage.bin").write_bytes(b"\x00\x01\x80garbage\xff\xfe")
    bad_model = root / "bad-model"
    bad_model.mkdir()
    for name in ("lorabot.json", "config.json", "adapter_config.json"):
        (bad_model / name).write_text("{not json", encoding="utf-8")
    rows = "".join(
        f"Bitcoin surges {i},bullish\nBitcoin plunges {i},bearish\nBitcoin flat {i},neutral\n"
        for i in range(5)
    )
    (root / "good.csv").write_text("text,label\n" + rows, encoding="utf-8")
    dead = _closed_port()
    (root / "config.toml").write_text(
        f'[store]\nurl = "sqlite:///{root / "store.sqlite"}"\ncache_dir = "{root / "cache"}"\n'
        '[model]\nbackend = "lexicon"\n[news]\nfeeds = []\n'
        f'[bybit]\nrest_url = "http://127.0.0.1:{dead}"\nws_public_url = "ws://127.0.0.1:{dead}"\n'
        'rest_backoff = "50ms"\nrest_backoff_max = "100ms"\n',
        encoding="utf-8",
    )
    return root


def _path(root: Path, arg: str) -> str:
    return {
        MISSING: str(root / "missing.csv"),
        FOLDER: str(root / "folder"),
        FILE: str(root / "file.txt"),
        GARBAGE: str(root / "garbage.bin"),
        UNDER_FILE: str(root / "file.txt" / "inside"),
        EMPTY: str(root / "empty"),
        BAD_MODEL: str(root / "bad-model"),
        GOOD_DATA: str(root / "good.csv"),
        "<dead-feed>": f"http://127.0.0.1:{_closed_port()}/rss",
    }.get(arg, arg)


def _lorabot(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *(_path(root, arg) for arg in args)],
        cwd=root,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "XDG_DATA_HOME": str(root / "data"),
            "LORABOT_DEBUG": "",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def _assert_one_clean_line(result: subprocess.CompletedProcess[str]) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode not in (0, 70), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lorabot"), lines[0]


@pytest.mark.slow
@pytest.mark.parametrize("args", CASES, ids=" ".join)
def test_a_bad_path_is_one_clean_line(folder: Path, args: tuple[str, ...]) -> None:
    command, *rest = args
    config = () if command == "convert-news" else ("--config", str(folder / "config.toml"))
    _assert_one_clean_line(_lorabot(folder, command, *rest, *config))


@pytest.mark.slow
@pytest.mark.parametrize("args", CONFIG_CASES, ids=" ".join)
def test_a_bad_config_path_is_one_clean_line(folder: Path, args: tuple[str, ...]) -> None:
    _assert_one_clean_line(_lorabot(folder, *args))
