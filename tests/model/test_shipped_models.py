"""The committed adapters by name: `[model] path = "tfns-only"` and `--model tfns-only` reach the
old stock-tweet default wherever the package is installed; a path always wins over a name, and a
name that is neither says which names there are."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bot.manifest import (
    MANIFEST_NAME,
    ManifestError,
    default_model_dir,
    model_folder,
    read_manifest,
    shipped_model_names,
    shipped_models_dir,
)


def test_the_default_and_the_stock_tweet_model_ship_by_name() -> None:
    assert {"default", "tfns-only"} <= set(shipped_model_names())
    assert model_folder("") == model_folder(None) == default_model_dir()
    assert model_folder("default") == default_model_dir()
    old = model_folder("tfns-only")
    assert old == shipped_models_dir() / "tfns-only" and (old / MANIFEST_NAME).is_file()
    # the alternative is the stock-tweet model: it saw no crypto row
    assert read_manifest(old).data["format"] == "tfns"
    assert read_manifest(default_model_dir()).data["sets"]


def test_a_path_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tfns-only").mkdir()
    assert model_folder("tfns-only") == Path("tfns-only")  # the user's own folder of that name
    assert model_folder("./nosuch") == Path("nosuch")
    assert model_folder("nosuch") == Path("nosuch")  # left for the loader to report


def test_a_missing_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"nosuch: model folder not found; the shipped mod"):
        read_manifest("nosuch")
    with pytest.raises(ManifestError, match=r"not found$"):
        read_manifest(tmp_path / "nosuch")  # a path: no list of names, it was not meant


def _classify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "classify", "--json", "--no-cache", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
    )


@pytest.mark.slow
def test_classify_answers_with_the_model_it_is_named(tmp_path: Path) -> None:
    headline = "Binance lists Solana perpetuals"
    default = _classify(headline)
    old = _classify("--model", "tfns-only", headline)
    assert default.returncode == 0 and old.returncode == 0, default.stderr + old.stderr
    ids = {json.loads(r.stdout)["model_id"] for r in (default, old)}
    assert len(ids) == 2  # two models, two ids: neither reads the other's cached answers
    missing = _classify("--model", "nosuch", headline)
    assert missing.returncode != 0
    assert "the shipped models are default, tfns-only" in missing.stderr
