"""Config inputs that used to end in an internal error: encodings, a log folder, --speed (11.10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, load_settings_file
from bot.errors import UserError
from bot.log import get_logger, setup_logging

ROOT = Path(__file__).resolve().parents[2]
TEXT = '[strategy]\nthreshold = 0.7  # "é" in a comment\n'


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_a_config_with_a_byte_order_mark_is_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "config.toml"
    raw = TEXT.encode(encoding)
    if encoding in ("utf-16-le", "utf-16-be"):  # these codecs write no BOM: add the right one
        raw = ("\ufeff" + TEXT).encode(encoding)
    path.write_bytes(raw)
    assert load_settings_file(path).strategy.threshold == 0.7


def test_bytes_that_are_not_utf8_name_the_file_and_offset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(TEXT.encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_settings_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: not UTF-8 text (byte 0xe9 at offset ")
    assert "save the file as UTF-8" in message and "\n" not in message


def test_utf16_without_a_bom_is_a_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "u16.toml"
    path.write_bytes(TEXT.encode("utf-16-le"))
    with pytest.raises(ConfigError) as caught:
        load_settings_file(path)
    assert str(caught.value) == (
        f"{path}: not UTF-8 text (NUL bytes: UTF-16 or UTF-32 without a byte-order mark?); "
        "save the file as UTF-8"
    )


def test_a_huge_integer_or_deep_nesting_is_not_valid_toml(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[engine]\nqueue_size = " + "9" * 5000 + "\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings_file(path)
    path.write_text("x = " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(ConfigError, match="not valid TOML: values nested too deeply"):
        load_settings_file(path)


def _lorabot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_cli_reads_a_utf16_config(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(TEXT.encode("utf-16"))
    done = _lorabot("config", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "threshold = 0.7" in done.stdout


def test_a_log_file_in_a_folder_not_made_yet_is_created(tmp_path: Path) -> None:
    log_file = tmp_path / "fresh" / "logs" / "lorabot.log"
    try:
        setup_logging("info", "json", file=str(log_file))
        get_logger("test").warning("made the folder", key="value")
        import logging

        logging.getLogger("lib").warning("stdlib line")
        for handler in logging.getLogger().handlers:
            handler.flush()
        assert "stdlib line" in log_file.read_text(encoding="utf-8")
    finally:
        setup_logging("info", "auto")


def test_a_log_file_that_cannot_be_opened_is_one_user_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(UserError) as caught:
        setup_logging("info", "json", file=str(blocker / "lorabot.log"))
    assert str(caught.value).startswith(f"[log] file {blocker / 'lorabot.log'}: cannot open: ")


@pytest.mark.parametrize("speed", ["nan", "inf", "-1", "0"])
def test_run_refuses_a_speed_that_is_not_a_finite_positive_number(
    tmp_path: Path, speed: str
) -> None:
    news = tmp_path / "news.jsonl"
    news.write_text(json.dumps({"title": "x", "published": "2024-01-01T00:00:00Z"}) + "\n")
    config = tmp_path / "config.toml"  # were the speed let through: a local store, no network
    config.write_text(
        f'[store]\ndata_dir = "{tmp_path}"\n[bybit]\nrest_url = "http://127.0.0.1:9"\n'
        '[model]\nbackend = "lexicon"\n[news]\nfeeds = []\n'
    )
    done = _lorabot(
        "run", "--config", str(config), "--replay-news", str(news), "--speed", speed, cwd=tmp_path
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--speed" in lines[0] and "finite number above 0" in lines[0]
