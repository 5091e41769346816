"""Weight-space interpolation of two LoRA adapters (WiSE-FT, Wortsman et al. 2022), measured.

A model fine-tuned on a new domain forgets a little of the old one. Interpolating its weights
with the model it started from, theta = a * new + (1 - a) * old, often keeps most of the new
domain's gain and gives back the old domain's score. For LoRA the interpolation is exact only on
the products B @ A, so the result is one adapter of twice the rank, [a B_new, (1 - a) B_old] @
[A_new; A_old], plus the interpolated head; merged at load (as the embedded backend does) it has
the same size and speed as either.

    python bench/adapter_soup.py --new RUN --old adapters/model/weights/default \
        --mix training/mixes/crypto_temporal.toml --limit 2500 --alphas 0.3,0.5,0.7 --out DIR

`a` is chosen on the validation rows of each set (the same per-set splits `lorabot train` made:
same mix, --limit, --valid-fraction and seed), by the mean of the sets' macro-F1; the chosen
soup is written to DIR with its temperature refitted on those rows, and scored once on the sets'
test rows. Benchmarks measure; they never decide pass/fail.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def soup(new: Path, old: Path, alpha: float, out: Path) -> Path:
    """Write the interpolated adapter (rank r_new + r_old) to `out`."""
    import torch
    from safetensors.torch import load_file, save_file

    a, b = (
        load_file(str(new / "adapter_model.safetensors")),
        load_file(str(old / "adapter_model.safetensors")),
    )
    if set(a) != set(b):
        raise SystemExit("the two adapters have different modules")
    merged: dict[str, torch.Tensor] = {}
    for key, value in a.items():
        if key.endswith("lora_A.weight"):
            merged[key] = torch.cat([value, b[key]], dim=0).contiguous()
        elif key.endswith("lora_B.weight"):
            merged[key] = torch.cat([alpha * value, (1 - alpha) * b[key]], dim=1).contiguous()
        else:  # the classification head
            merged[key] = (alpha * value + (1 - alpha) * b[key]).contiguous()
    out.mkdir(parents=True, exist_ok=True)
    save_file(merged, str(out / "adapter_model.safetensors"))
    config = json.loads((new / "adapter_config.json").read_text())
    rank = int(config["r"]) + int(json.loads((old / "adapter_config.json").read_text())["r"])
    # the same scale alpha / r as both halves (LoRA multiplies B @ A by lora_alpha / r)
    config["lora_alpha"] = int(config["lora_alpha"]) * rank // int(config["r"])
    config["r"] = rank
    (out / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    manifest = json.loads((new / "lorabot.json").read_text())
    manifest["method_config"] = {**manifest.get("method_config", {}), "r": rank,
                                 "alpha": config["lora_alpha"]}  # fmt: skip
    manifest["data"] = {**manifest.get("data", {}), "soup": {
        "new": str(new), "old": str(old), "alpha": alpha}}  # fmt: skip
    (out / "lorabot.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--new", type=Path, required=True)
    parser.add_argument("--old", type=Path, required=True)
    parser.add_argument("--mix", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--valid-fraction", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--alphas", default="0.3,0.5,0.7")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import numpy as np

    from training.calibration import fit_temperature
    from training.classifier import load_model
    from training.examples import ReadOptions
    from training.mix import read_mix
    from training.per_set import score_rows
    from training.set_split import split_sets

    split, _ = split_sets(read_mix(args.mix), ReadOptions(), valid_fraction=args.valid_fraction,
                          seed=args.seed, limit=args.limit or None)  # fmt: skip
    texts = [e.text for e in split.valid]
    rows: list[dict[str, Any]] = []
    best: tuple[float, float] | None = None
    for alpha in [float(a) for a in args.alphas.split(",")]:
        folder = soup(args.new, args.old, alpha, args.out / f"alpha-{alpha:g}")
        probs = load_model(folder).predict_proba(texts, calibrated=False)
        scores = {part.name: score_rows(split.valid[part.rows("valid")],
                                        probs[part.rows("valid")], 1.0)
                  for part in split.sets}  # fmt: skip
        mean_f1 = float(np.mean([s["macro_f1"] for s in scores.values()]))
        rows.append({"alpha": alpha, "mean_macro_f1": mean_f1,
                     **{f"{n}_valid": (round(s["accuracy"], 4), round(s["macro_f1"], 4))
                        for n, s in scores.items()}})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
        if best is None or mean_f1 > best[1]:
            best = (alpha, mean_f1)
    assert best is not None
    chosen = args.out / f"alpha-{best[0]:g}"
    probs = load_model(chosen).predict_proba(texts, calibrated=False)
    temperature = fit_temperature([int(e.label) for e in split.valid], probs)
    manifest = json.loads((chosen / "lorabot.json").read_text())
    manifest["temperature"] = temperature
    (chosen / "lorabot.json").write_text(json.dumps(manifest, indent=2) + "\n")
    final = args.out / "chosen"
    shutil.rmtree(final, ignore_errors=True)
    shutil.copytree(chosen, final)
    test = {}
    if split.test:
        model = load_model(final)
        raw = model.predict_proba([e.text for e in split.test], calibrated=False)
        for part in split.sets:
            if part.n_test:
                s = score_rows(split.test[part.rows("test")], raw[part.rows("test")], temperature)
                test[part.name] = {"n": s["n"], "accuracy": round(s["accuracy"], 4),
                                   "macro_f1": round(s["macro_f1"], 4),
                                   "weighted_f1": round(s["weighted_f1"], 4),
                                   "ece_before": s["calibration"]["ece_before"],
                                   "ece_after": s["calibration"]["ece_after"]}  # fmt: skip
    print(json.dumps({"chosen_alpha": best[0], "temperature": temperature, "test": test}))


if __name__ == "__main__":
    main()
