"""How a decoder is asked: the prompt's token ids and the three label words' token ids.

A decoder answers with the next-token probabilities of three label words after a fixed prompt
(both named in `lorabot.json`). The embedded backend and the vLLM client must build exactly the
same token ids for that to give the same probabilities, so both use these functions, and so does
the reference forward pass in the tests; they are thin readers of the manifest over
`bot.manifest`'s prompt functions, which training uses too. No torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.manifest import (
    DEFAULT_LABEL_WORDS,
    DEFAULT_PROMPT,
    Manifest,
    PromptError,
    label_word_ids,
    prompt_token_ids,
)

__all__ = ["PromptError", "label_token_ids", "prompt_ids", "prompt_template"]


def prompt_template(manifest: Manifest) -> str:
    template = manifest.prompt or DEFAULT_PROMPT
    if template.count("{text}") != 1:
        raise PromptError(f"the manifest's prompt must hold {{text}} once: {template!r}")
    return template


def label_token_ids(tokenizer: Any, manifest: Manifest) -> tuple[int, int, int]:
    """The token id of each label word as it follows the prompt, in label order.

    The manifest records them (`label_token_ids`, written by `lorabot train`); they are checked
    against the tokenizer, because a different tokenizer would silently score other tokens.
    """
    words = manifest.label_words or DEFAULT_LABEL_WORDS
    ids = label_word_ids(tokenizer, prompt_template(manifest), words)
    recorded = manifest.label_token_ids
    if recorded is not None and tuple(int(i) for i in recorded) != ids:
        raise PromptError(
            f"the tokenizer spells the label words as tokens {list(ids)}, but the model was "
            f"trained on {list(recorded)}: wrong tokenizer or base model?"
        )
    return ids


def prompt_ids(
    tokenizer: Any, template: str, texts: Sequence[str], max_length: int
) -> list[list[int]]:
    """Token ids of the prompt around each text, cut as training cuts them (`prompt_token_ids`)."""
    return [prompt_token_ids(tokenizer, template, text, max_length) for text in texts]
