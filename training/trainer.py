"""The training loop: one loop for every method and both families.

AdamW with decoupled weight decay (not on biases and norms), warm-up then linear or cosine decay,
gradient clipping and accumulation, class-weighted cross-entropy, validation every epoch (or every
N steps) with early stopping on the validation loss, and the weights of the best validation kept
(best by macro-F1 by default: past its minimum the validation loss rises with the model's
confidence while accuracy and F1 still improve, so the lowest-loss weights are often not the
best classifier; `keep_best = "loss"` keeps those instead, `"last"` the final weights).
A run is seeded end to end (split, initialisation, dropout, data order) and checkpoints what it
needs to resume exactly where it stopped: the trainable weights, optimiser, scheduler, random
states and position in the epoch. The data order of an epoch is a function of (seed, epoch), so a
resumed run sees the same batches an uninterrupted one would have.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from bot.config import TrainingConfig
from bot.errors import UserError
from bot.log import get_logger
from training.data import Example
from training.families import Family, collate, label_logits
from training.fast_dropout import masks_for
from training.loop_state import CHECKPOINTS, LoopResult, LoopState, latest_checkpoint
from training.losses import distilled_loss, example_loss
from training.methods import load_trainable_state, trainable_state
from training.metrics import evaluate_predictions, validation_by_set
from training.precision import resolve_training_precision, training_autocast
from training.splits import Split, class_weights

log = get_logger(__name__)


@dataclass
class Encoded:
    """A split as token ids and label indices."""

    rows: list[list[int]]
    labels: list[int]

    @classmethod
    def of(cls, examples: Sequence[Example], encode: Any) -> Encoded:
        return cls(encode([e.text for e in examples]), [int(e.label) for e in examples])


def evaluate_rows(
    model: nn.Module,
    data: Encoded,
    family: Family,
    token_ids: Sequence[int] | None,
    pad_id: int,
    batch_size: int,
    weights: torch.Tensor | None = None,
) -> tuple[float, np.ndarray]:
    """(weighted mean loss, (N, 3) probabilities) over a split, in eval mode."""
    order = sorted(range(len(data.rows)), key=lambda i: len(data.rows[i]))
    probs = np.zeros((len(order), 3), dtype=np.float64)
    total = 0.0
    weight_sum = 0.0
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                chunk = order[start : start + batch_size]
                batch = collate([data.rows[i] for i in chunk], pad_id)
                labels = torch.tensor([data.labels[i] for i in chunk])
                logits, vocab = label_logits(model, batch, family, token_ids)
                losses = example_loss(logits, vocab, labels, token_ids)
                w = weights[labels] if weights is not None else torch.ones_like(losses)
                total += float((losses * w).sum())
                weight_sum += float(w.sum())
                probs[chunk] = torch.softmax(logits.double(), dim=-1).numpy()
    finally:
        model.train(was_training)
    return (total / weight_sum if weight_sum else 0.0), probs


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        lowered = name.lower()
        if parameter.ndim < 2 or "norm" in lowered or lowered.endswith("bias"):
            no_decay.append(parameter)
        else:
            decay.append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0})
    return groups


class Trainer:
    def __init__(
        self,
        model: nn.Module,
        cfg: TrainingConfig,
        family: Family,
        split: Split,
        train: Encoded,
        valid: Encoded,
        *,
        pad_id: int,
        token_ids: Sequence[int] | None,
        learning_rate: float,
        out: Path,
        fingerprint: str,
        progress: bool = True,
        soft_targets: np.ndarray | None = None,
    ) -> None:
        self.model = model
        self.cfg = cfg
        self.family = family
        self.train_data = train
        self.valid_data = valid
        self.pad_id = pad_id
        self.token_ids = token_ids
        self.out = out
        self.checkpoints = out / CHECKPOINTS
        self.fingerprint = fingerprint
        self.progress = progress
        weights = class_weights(split.train, cfg.class_weights)
        self.weights = torch.tensor(weights, dtype=torch.float32) if weights else None
        self.class_weights = weights
        # each row's set weight (several sets of a data mix), times its class weight in the loss
        per_row = split.example_weights()
        self.row_weights = torch.tensor(per_row, dtype=torch.float32) if per_row else None
        # distillation: the teachers' mean probabilities per training row (training.distill)
        self.soft = None
        if soft_targets is not None:
            self.soft = torch.tensor(soft_targets, dtype=torch.float32)
        # several named sets: each is scored at every validation, and the weights kept are the
        # best by the mean over sets, so a small set counts as much as a big one
        self.parts = split.sets if len(split.sets) > 1 else ()
        self.final_valid_probs = np.zeros((0, 3))
        micro = math.ceil(len(train.rows) / cfg.batch_size)
        self.steps_per_epoch = math.ceil(micro / cfg.grad_accum)
        self.total_steps = max(1, math.ceil(cfg.epochs * self.steps_per_epoch))
        self.eval_every = cfg.eval_every or self.steps_per_epoch
        self.checkpoint_every = cfg.checkpoint_every or self.eval_every
        self.optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=learning_rate)
        from transformers import get_scheduler

        self.scheduler = get_scheduler(
            cfg.scheduler,
            self.optimizer,
            num_warmup_steps=round(cfg.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        self.state = LoopState()
        self._rng_at_step: torch.Tensor | None = None
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.precision = resolve_training_precision(cfg.precision, cfg.method)
        if not self.trainable:
            raise UserError("nothing to train: the method left no trainable parameter")

    # ---------------------------------------------------------------------------------------
    # data order

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        """The micro-batches of an epoch: a function of (seed, epoch) only.

        With `group_by_length`, a shuffled epoch is cut into groups of 50 batches, each group
        sorted by length and cut into batches, and the batches shuffled again: about half of
        the compute on short texts was padding, and batches stay random in what they hold.
        """
        rng = np.random.default_rng([self.cfg.seed, epoch])
        order = rng.permutation(len(self.train_data.rows)).tolist()
        size = self.cfg.batch_size
        if not self.cfg.group_by_length:
            return [order[i : i + size] for i in range(0, len(order), size)]
        rows = self.train_data.rows
        batches: list[list[int]] = []
        group = size * 50
        for start in range(0, len(order), group):
            chunk = sorted(order[start : start + group], key=lambda i: len(rows[i]))
            batches.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
        return [batches[k] for k in rng.permutation(len(batches)).tolist()]

    def _batch(
        self, indices: list[int]
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor | None]:
        batch = collate([self.train_data.rows[i] for i in indices], self.pad_id)
        labels = torch.tensor([self.train_data.labels[i] for i in indices])
        weight = self.weights[labels] if self.weights is not None else torch.ones(len(labels))
        if self.row_weights is not None:
            weight = weight * self.row_weights[indices]
        soft = self.soft[indices] if self.soft is not None else None
        return batch, labels, weight, soft

    # ---------------------------------------------------------------------------------------
    # the loop

    def run(self) -> LoopResult:
        """Train to the end (or an early stop), a bf16 run with the cheaper dropout masks of
        `training.fast_dropout` while it trains (the model's own modules back afterwards)."""
        with masks_for(self.precision, self.model):
            return self._run()

    def _run(self) -> LoopResult:
        from tqdm.auto import tqdm

        state = self.state
        self.model.train()
        bar = tqdm(
            total=self.total_steps,
            initial=state.step,
            desc="training",
            unit="step",
            file=sys.stderr,
            disable=not self.progress,
            dynamic_ncols=True,
        )
        running: list[float] = []
        try:
            while state.step < self.total_steps and not state.stopped_early:
                batches = self._epoch_batches(state.epoch)
                groups = [
                    batches[i : i + self.cfg.grad_accum]
                    for i in range(0, len(batches), self.cfg.grad_accum)
                ]
                group_index = state.micro // self.cfg.grad_accum
                bar.set_description(f"epoch {state.epoch + 1}")
                for group in groups[group_index:]:
                    # An interrupted step is redone on resume, with the same dropout masks.
                    self._rng_at_step = torch.get_rng_state()
                    started = time.perf_counter()
                    loss = self._step(group)
                    self._rng_at_step = None
                    state.train_seconds += time.perf_counter() - started
                    state.step += 1
                    state.micro += len(group)
                    running.append(loss)
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
                    last = state.step >= self.total_steps
                    end_of_epoch = state.micro >= len(batches)
                    if end_of_epoch:
                        state.epoch += 1
                        state.micro = 0
                    validate = state.step % self.eval_every == 0 or last
                    if validate:
                        self._validate(sum(running) / len(running))
                        running = []
                    if validate or state.step % self.checkpoint_every == 0:
                        self.save_checkpoint()
                    if last or state.stopped_early or end_of_epoch:
                        break
        except KeyboardInterrupt:
            self.optimizer.zero_grad(set_to_none=True)
            self.save_checkpoint(rng=self._rng_at_step)
            bar.close()
            raise UserError(
                f"interrupted at step {state.step}/{self.total_steps}; "
                f"continue with the same command and --resume (checkpoint in {self.checkpoints})"
            ) from None
        bar.close()
        valid_scores = self._finish()
        return LoopResult(state, self.steps_per_epoch, self.total_steps, valid_scores)

    def _step(self, group: list[list[int]]) -> float:
        batches = [self._batch(indices) for indices in group]
        total_weight = float(sum(weight.sum() for _, _, weight, _ in batches))
        loss_sum = 0.0
        for batch, labels, weight, soft in batches:
            with training_autocast(self.precision)():
                logits, vocab = label_logits(self.model, batch, self.family, self.token_ids)
            if self.precision != "fp32":  # the loss and its gradient's start stay fp32
                logits = logits.float()
                vocab = vocab.float() if vocab is not None else None
            losses = example_loss(logits, vocab, labels, self.token_ids, self.cfg.label_smoothing)
            if soft is not None:
                losses = distilled_loss(losses, logits, soft, self.cfg.distill_weight)
            loss = (losses * weight).sum() / total_weight
            loss.backward()
            loss_sum += float(loss.detach())
        if self.cfg.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        if not math.isfinite(loss_sum):
            raise UserError(
                f"the training loss became {loss_sum} at step {self.state.step + 1}: "
                "lower the learning rate"
            )
        return loss_sum

    def _validate(self, train_loss: float) -> None:
        state = self.state
        loss, probs = evaluate_rows(
            self.model,
            self.valid_data,
            self.family,
            self.token_ids,
            self.pad_id,
            self.cfg.eval_batch_size,
            self.weights,
        )
        scores = evaluate_predictions(self.valid_data.labels, probs)
        if loss < state.best_loss - 1e-6:
            state.best_loss = loss
            state.bad_evals = 0
        else:
            state.bad_evals += 1
            patience = self.cfg.patience
            if patience and state.bad_evals >= patience and state.step < self.total_steps:
                state.stopped_early = True
        keep = self.cfg.keep_best
        score = -loss if keep == "loss" else 0.0 if keep == "last" else float(scores[keep])
        per_set = validation_by_set(self.parts, self.valid_data.labels, probs)
        if per_set and keep in ("accuracy", "macro_f1"):
            score = float(np.mean([entry[keep] for entry in per_set.values()]))
        improved = keep == "last" or score > state.best_score + 1e-9
        if improved:
            state.best_score = score
            state.best_step = state.step
            if keep != "last":
                self.checkpoints.mkdir(parents=True, exist_ok=True)
                save_file(trainable_state(self.model), str(self.checkpoints / "best.safetensors"))
        entry = {
            "step": state.step,
            "epoch": round(state.step / self.steps_per_epoch, 3),
            "train_loss": round(train_loss, 5),
            "valid_loss": round(loss, 5),
            "valid_accuracy": round(scores["accuracy"], 5),
            "valid_macro_f1": round(scores["macro_f1"], 5),
            "lr": self.scheduler.get_last_lr()[0],
            "best": improved,
        }
        if per_set:
            entry["sets"] = per_set
        state.history.append(entry)
        log.info("validation", **entry)
        if state.stopped_early:
            log.info("early stop: validation loss stopped improving", patience=self.cfg.patience)

    def _finish(self) -> dict[str, Any]:
        """Put the best validation weights back and score them once more."""
        best = self.checkpoints / "best.safetensors"
        keep_last = self.cfg.keep_best == "last"
        if not keep_last and best.is_file() and self.state.best_step != self.state.step:
            load_trainable_state(self.model, load_file(str(best)))
            log.info("restored the best validation weights", step=self.state.best_step)
        loss, probs = evaluate_rows(
            self.model,
            self.valid_data,
            self.family,
            self.token_ids,
            self.pad_id,
            self.cfg.eval_batch_size,
            self.weights,
        )
        self.final_valid_probs = probs
        return evaluate_predictions(self.valid_data.labels, probs, loss)

    # ---------------------------------------------------------------------------------------
    # checkpoints

    def save_checkpoint(self, rng: torch.Tensor | None = None) -> Path:
        folder = self.checkpoints / f"step-{self.state.step:08d}"
        partial = folder.with_name(folder.name + ".partial")
        if partial.exists():
            shutil.rmtree(partial)
        partial.mkdir(parents=True)
        save_file(trainable_state(self.model), str(partial / "trainable.safetensors"))
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "torch_rng": rng if rng is not None else torch.get_rng_state(),
            },
            partial / "optimizer.pt",
        )
        (partial / "state.json").write_text(
            json.dumps({"fingerprint": self.fingerprint, "loop": self.state.to_json()}, indent=1),
            encoding="utf-8",
        )
        if folder.exists():
            shutil.rmtree(folder)
        partial.rename(folder)  # a checkpoint is complete or absent, never half-written
        kept = sorted(self.checkpoints.glob("step-*[0-9]"))
        for old in kept[: -self.cfg.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)
        return folder

    def resume(self, checkpoint: Path | None = None) -> bool:
        """Load the given checkpoint, or the latest one; False when there is none."""
        folder = checkpoint or latest_checkpoint(self.checkpoints)
        if folder is None:
            return False
        try:
            saved = json.loads((folder / "state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UserError(f"{folder}: not a usable checkpoint ({error})") from None
        if saved.get("fingerprint") != self.fingerprint:
            raise UserError(
                f"{folder}: the checkpoint was made with other settings or data; "
                "resume with the same command, or start again with --overwrite"
            )
        load_trainable_state(self.model, load_file(str(folder / "trainable.safetensors")))
        extra = torch.load(folder / "optimizer.pt", weights_only=False)
        self.optimizer.load_state_dict(extra["optimizer"])
        self.scheduler.load_state_dict(extra["scheduler"])
        torch.set_rng_state(extra["torch_rng"])
        self.state = LoopState.from_json(saved["loop"])
        log.info("resumed", checkpoint=str(folder), step=self.state.step, of=self.total_steps)
        return True
