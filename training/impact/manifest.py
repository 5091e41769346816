"""`impact.json`: what a numbers-only or fusion impact folder holds, readable without torch.

Written by `training.impact.run`, read by the serving adapter (`adapters/model/impact.py`) and by
`bot.assemble`, which recognises a `[model] path` holding one. Fields: `task` ("impact"),
`kind` ("numbers" or "fusion"), `symbol`, `horizon` / `horizon_s`, `threshold`, `features` (the
groups) and `feature_names`, `label_meaning` (bearish = down, neutral = flat, bullish = up),
`text_dim`, `encoder` (the fusion's text model folder, inside it), `head` (the network's
settings), `standardiser`, `split`, `eval` (the test scores) and where the data came from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

IMPACT_MANIFEST = "impact.json"


def is_impact_folder(folder: str | Path) -> bool:
    return bool(str(folder)) and (Path(folder).expanduser() / IMPACT_MANIFEST).is_file()


def read_impact_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder).expanduser() / IMPACT_MANIFEST
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable impact manifest ({error})") from None
    if not isinstance(document, dict) or document.get("task") != "impact":
        raise ValueError(f"{path}: not an impact model manifest (no task = impact)")
    return document
