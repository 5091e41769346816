"""The fine-tuning toolkit: adapt a pretrained model to financial sentiment, compare methods,
export for serving.

Modules, in the order data flows through them:

- `examples`, `formats`, `data`: the example shape, one reader per format (plain CSV/JSONL,
  TFNS, Financial PhraseBank, FiQA), and the entry point that also takes known hub names;
- `splits`: leak-free train/validation/test splits, class weights;
- `families`: encoder head vs decoder label words, prompt formatting, label logits;
- `methods`: the method table (LoRA, QLoRA, prefix, prompt, bottleneck adapter, full), with
  `prefix` (encoder prefix-tuning) and `bottleneck` (adapters) where peft has no implementation;
- `base_model`: loading bases (4-bit for QLoRA), parameter counts;
- `trainer`: the loop (schedules, clipping, accumulation, early stopping, checkpoints, resume);
- `pipeline`: one run from data to a finished folder; `saving`, `card`: what it writes;
- `classifier`: the reference loader of any model folder, predicting through peft (shared with
  serving for what its direct merge does not cover);
- `export`: folders vLLM serves; `compare`: methods side by side (commands: `bot/commands/`).

Nothing here imports torch at package import time.
"""
