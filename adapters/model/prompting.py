"""How a decoder is asked: the prompt's token ids and the three label words' token ids.

A decoder answers with the next-token probabilities of three label words after a fixed prompt
(both named in `lorabot.json`). The embedded backend and the vLLM client must build exactly the
same token ids for that to give the same probabilities, so both use these functions, and so does
the reference forward pass in the tests. Only `tokenizers`-level calls are used (no torch).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.errors import UserError
from bot.manifest import DEFAULT_LABEL_WORDS, DEFAULT_PROMPT, Manifest


class PromptError(UserError):
    pass


def prompt_template(manifest: Manifest) -> str:
    template = manifest.prompt or DEFAULT_PROMPT
    if "{text}" not in template:
        raise PromptError(f"the manifest's prompt has no {{text}} placeholder: {template!r}")
    return template


def label_token_ids(tokenizer: Any, manifest: Manifest) -> tuple[int, int, int]:
    """The single token id of each label word, in label order (bearish, neutral, bullish).

    A manifest may list them itself (`label_token_ids`); otherwise a word is looked up as it
    follows the prompt, i.e. with a leading space where the tokenizer marks one (GPT-2, Llama),
    and bare where that is one token and the spaced form is not (WordPiece ignores the space).
    """
    extra = manifest.model_extra or {}
    explicit = extra.get("label_token_ids")
    if explicit is not None:
        ids = [int(i) for i in explicit]
        if len(ids) != 3:
            raise PromptError(f"label_token_ids must list 3 ids, got {explicit!r}")
        return ids[0], ids[1], ids[2]
    words = manifest.label_words or DEFAULT_LABEL_WORDS
    found: list[int] = []
    for word in words:
        spaced = tokenizer.encode(" " + word, add_special_tokens=False)
        bare = tokenizer.encode(word, add_special_tokens=False)
        if len(spaced) == 1:
            found.append(int(spaced[0]))
        elif len(bare) == 1:
            found.append(int(bare[0]))
        else:
            raise PromptError(
                f"label word {word!r} is not a single token of this tokenizer "
                f"({spaced} / {bare}); choose single-token label words"
            )
    if len(set(found)) != 3:
        raise PromptError(f"label words {words} map to repeated token ids {found}")
    return found[0], found[1], found[2]


def prompt_ids(
    tokenizer: Any, template: str, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of the prompt around each text, cut in the text (never in the instruction) so
    that the prompt plus one label token fits `max_length`."""
    head, _, tail = template.partition("{text}")
    full = [template.replace("{text}", text) for text in texts]
    encoded: list[list[int]] = tokenizer(full, add_special_tokens=True)["input_ids"]
    budget = max_length - 1
    out: list[list[int]] = []
    for text, ids in zip(texts, encoded, strict=True):
        if len(ids) <= budget:
            out.append(list(ids))
            continue
        out.append(_truncated(tokenizer, head, text, tail, budget))
    return out


def _truncated(tokenizer: Any, head: str, text: str, tail: str, budget: int) -> list[int]:
    """Shorten the text (by its own tokens) until the whole prompt fits the budget."""
    text_ids = tokenizer.encode(text, add_special_tokens=False)
    low, high = 0, len(text_ids)
    best: list[int] | None = None
    while low <= high:  # the longest text prefix that fits
        middle = (low + high) // 2
        piece = tokenizer.decode(text_ids[:middle], skip_special_tokens=True)
        ids = tokenizer(head + piece + tail, add_special_tokens=True)["input_ids"]
        if len(ids) <= budget:
            best = list(ids)
            low = middle + 1
        else:
            high = middle - 1
    if best is None:
        raise PromptError(f"the prompt alone does not fit max_length {budget + 1}")
    return best
