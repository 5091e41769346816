"""Loading bases: an existing 3-class head is put in our label order, a missing model is a clear
error, and the embedded default is named by its hub id, never by this machine's path."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from bot.errors import UserError
from bot.manifest import DEFAULT_BASE_HUB_ID, embedded_base_path
from training.base_model import base_reference, load_base, load_config
from training.families import detect_family


def test_existing_head_is_permuted_into_our_label_order(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig.from_pretrained(str(tiny_bert))
    config.num_labels = 3
    config.id2label = {0: "positive", 1: "negative", 2: "neutral"}  # FinBERT's order
    config.label2id = {v: k for k, v in config.id2label.items()}
    torch.manual_seed(1)
    theirs = BertForSequenceClassification(config).eval()
    folder = tmp_path / "finbert-like"
    theirs.save_pretrained(str(folder))
    AutoTokenizer.from_pretrained(str(tiny_bert)).save_pretrained(str(folder))

    ours = load_base(str(folder)).model.eval()
    assert ours.config.id2label == {0: "bearish", 1: "neutral", 2: "bullish"}
    batch = {"input_ids": torch.tensor([[101, 2000, 3000, 102]])}
    with torch.no_grad():
        before = theirs(**batch).logits[0]
        after = ours(**batch).logits[0]
    # bearish <- negative (1), neutral <- neutral (2), bullish <- positive (0)
    assert torch.allclose(after, before[[1, 2, 0]], atol=1e-6)


def test_missing_model_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="cannot load model 'no-such-org/no-such-model'"):
        load_config("no-such-org/no-such-model")


def test_default_base_is_named_portably(tiny_bert: Path) -> None:
    assert base_reference("") == DEFAULT_BASE_HUB_ID
    assert base_reference(str(embedded_base_path())) == DEFAULT_BASE_HUB_ID
    assert base_reference("all-MiniLM-L6-v2") == DEFAULT_BASE_HUB_ID
    assert base_reference(str(tiny_bert)) == str(tiny_bert.resolve())
    assert base_reference("someone/some-model") == "someone/some-model"


def test_family_detection(tiny_bert: Path, tiny_llama: Path) -> None:
    assert detect_family(load_config(str(tiny_bert))) == "encoder"
    assert detect_family(load_config(str(tiny_llama))) == "decoder"
    assert detect_family(load_config(str(tiny_llama)), "encoder") == "encoder"


def test_decoder_prompt_cuts_the_text_never_the_prompt(tiny_llama: Path) -> None:
    from bot.manifest import prompt_token_ids
    from training.base_model import load_tokenizer
    from training.families import prompt_spec

    tokenizer = load_tokenizer(str(tiny_llama), "decoder")
    spec = prompt_spec(tokenizer)
    long_text = " ".join(["shares of the company rose sharply"] * 40)
    ids = prompt_token_ids(tokenizer, spec.template, long_text, 48)
    assert len(ids) == 48
    tail = tokenizer.encode("Sentiment:", add_special_tokens=False)
    body = ids[:-1] if ids[-1] == tokenizer.sep_token_id else ids  # BERT-style tokenizer adds [SEP]
    assert body[-len(tail) :] == tail
    short = prompt_token_ids(tokenizer, spec.template, "Shares rose", 48)
    assert tokenizer.decode(short, skip_special_tokens=True).endswith("sentiment :")
    # The label words are single tokens after the prompt, and distinct.
    assert len(set(spec.token_ids)) == 3
    assert tokenizer.convert_ids_to_tokens(list(spec.token_ids)) == [
        "negative",
        "neutral",
        "positive",
    ]


def test_training_and_serving_build_the_same_prompt_for_a_long_text(tiny_llama: Path) -> None:
    """The prompt a served decoder is asked is the one it was trained on, token for token: a
    skew here would score other tokens than the adapter learnt, silently."""
    from adapters.model.prompting import label_token_ids, prompt_ids, prompt_template
    from bot.manifest import Manifest
    from training.base_model import load_tokenizer
    from training.families import encode_texts, prompt_spec

    tokenizer = load_tokenizer(str(tiny_llama), "decoder")
    spec = prompt_spec(tokenizer)
    manifest = Manifest(
        family="decoder",
        method="lora",
        kind="adapter",
        prompt=spec.template,
        label_words=spec.words,
        label_token_ids=spec.token_ids,
        max_length=40,
    )
    texts = [
        " ".join(["bitcoin miners sold reserves as hash price fell to a record low"] * 12),
        "Shares rose",
    ]
    trained = encode_texts(tokenizer, texts, "decoder", manifest.max_length, spec.template)
    served = prompt_ids(tokenizer, prompt_template(manifest), texts, manifest.max_length)
    assert trained == served
    assert len(trained[0]) == manifest.max_length and len(trained[1]) < manifest.max_length
    assert label_token_ids(tokenizer, manifest) == spec.token_ids
