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
    if template.count("{text}") != 1:
        raise PromptError(f"the manifest's prompt must hold {{text}} once: {template!r}")
    return template


def label_token_ids(tokenizer: Any, manifest: Manifest) -> tuple[int, int, int]:
    """The token id of each label word as it follows the prompt, in label order.

    The manifest records them (`label_token_ids`, written by `lorabot train`); they are checked
    against the tokenizer, because a different tokenizer would silently score other tokens.
    Otherwise each word is tokenised in place, after the prompt's last line and a space, as the
    fine-tuning toolkit does (BPE and SentencePiece spell a word differently after a space).
    """
    words = manifest.label_words or DEFAULT_LABEL_WORDS
    template = prompt_template(manifest)
    after = template.split("{text}")[1]
    tail = after.splitlines()[-1] if after.strip() else after
    head = tokenizer.encode(tail, add_special_tokens=False)
    found: list[int] = []
    for word in words:
        full = tokenizer.encode(f"{tail} {word}", add_special_tokens=False)
        rest = full[len(head) :] if full[: len(head)] == head else None
        if rest is None or len(rest) != 1:
            raise PromptError(
                f"label word {word!r} is not a single token of this tokenizer; "
                "choose single-token label words"
            )
        found.append(int(rest[0]))
    if len(set(found)) != 3:
        raise PromptError(f"label words {list(words)} map to repeated token ids {found}")
    ids = (found[0], found[1], found[2])
    recorded = getattr(manifest, "label_token_ids", None) or (manifest.model_extra or {}).get(
        "label_token_ids"
    )
    if recorded is not None and tuple(int(i) for i in recorded) != ids:
        raise PromptError(
            f"the tokenizer spells the label words as tokens {list(ids)}, but the model was "
            f"trained on {list(recorded)}: wrong tokenizer or base model?"
        )
    return ids


def prompt_ids(
    tokenizer: Any, template: str, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of the prompt around each text (the tokenizer's own special tokens), at most
    `max_length` of them: a long text is cut, never the instruction around it. The same
    algorithm as the fine-tuning toolkit's `format_prompt`, so served and trained prompts agree."""
    return [_prompt(tokenizer, template, text, max_length) for text in texts]


def _prompt(tokenizer: Any, template: str, text: str, max_length: int) -> list[int]:
    ids = tokenizer.encode(template.replace("{text}", text))
    if len(ids) <= max_length:
        return list(ids)
    overhead = len(tokenizer.encode(template.replace("{text}", "")))
    budget = max_length - overhead
    if budget <= 0:
        raise PromptError(
            f"max_length {max_length} is too short for the prompt ({overhead} tokens)"
        )
    text_ids = tokenizer.encode(text, add_special_tokens=False)
    cut = tokenizer.decode(text_ids[:budget], skip_special_tokens=True)
    ids = tokenizer.encode(template.replace("{text}", cut))
    while len(ids) > max_length and budget > 0:  # re-tokenising may merge differently
        budget -= 1
        cut = tokenizer.decode(text_ids[:budget], skip_special_tokens=True)
        ids = tokenizer.encode(template.replace("{text}", cut))
    return list(ids[:max_length])
