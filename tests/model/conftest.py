"""Model-serving fixtures: small real models built once per test session (per xdist worker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model import builders


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def encoder_adapter(model_dirs: Path) -> Path:
    return builders.make_encoder_adapter(model_dirs / "enc-lora")


@pytest.fixture(scope="session")
def encoder_merged(encoder_adapter: Path, model_dirs: Path) -> Path:
    return builders.make_encoder_merged(encoder_adapter, model_dirs / "enc-merged")


@pytest.fixture(scope="session")
def tiny_llama(model_dirs: Path) -> Path:
    return builders.make_tiny_llama(model_dirs / "tiny-llama")


@pytest.fixture(scope="session")
def decoder_lora(tiny_llama: Path, model_dirs: Path) -> Path:
    return builders.make_decoder_adapter(tiny_llama, model_dirs / "dec-lora", seed=3)


@pytest.fixture(scope="session")
def decoder_prompt_tuned(tiny_llama: Path, model_dirs: Path) -> Path:
    return builders.make_decoder_adapter(
        tiny_llama, model_dirs / "dec-prompt", seed=4, method="prompt"
    )


HEADLINES = [
    "Bitcoin jumps 8% after the SEC approves the first spot ETF applications",
    "Tesla shares plunge as the carmaker recalls two million vehicles",
    "ECB holds rates steady",
    "$AAPL beats on earnings, guides higher for the holiday quarter; analysts raise targets "
    "across the board while supply-chain worries ease and services revenue hits a record",
    "Oil slips",
]
# Longer than any max length used here: both backends must cut it the same way.
LONG = " ".join(["Markets weigh mixed earnings, rate-cut hopes and a stronger dollar"] * 12)
