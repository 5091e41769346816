"""The training losses: hard labels (three classes, or a decoder's label word over its whole
vocabulary) and a distribution over the labels (a teacher ensemble's answers)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def example_loss(
    logits: torch.Tensor,
    vocab_logits: torch.Tensor | None,
    labels: torch.Tensor,
    token_ids: Sequence[int] | None,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Per-example cross-entropy: over the 3 classes (encoders), or over the whole vocabulary
    with the label word as the target (decoders), so the label words become the model's top
    next tokens and a server's top-k logprobs always contain them."""
    if vocab_logits is None:
        return F.cross_entropy(logits, labels, reduction="none", label_smoothing=smoothing)
    assert token_ids is not None
    targets = torch.tensor(token_ids, device=labels.device)[labels]
    return F.cross_entropy(vocab_logits, targets, reduction="none", label_smoothing=smoothing)


def soft_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy against a distribution over the three labels (a teacher
    ensemble's mean): its gradient is the student's probabilities minus the targets."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1)


def distilled_loss(
    hard: torch.Tensor, logits: torch.Tensor, soft: torch.Tensor, weight: float
) -> torch.Tensor:
    """`(1 - w) x hard + w x soft` per example, except on rows whose target is all zeros (a set
    no teacher teaches), which keep the hard loss whole rather than a `(1 - w)` share of it."""
    share = torch.where(soft.sum(dim=-1) > 0, weight, 0.0)
    return (1 - share) * hard + share * soft_loss(logits, soft)
