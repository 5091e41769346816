"""One method of a `lorabot compare` run, in a process of its own (so its peak memory is its own).

Usage (by `training.compare` only): python -m training.compare_worker JOB.json RESULT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bot.config import TrainingConfig
from bot.errors import UserError


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m training.compare_worker JOB.json RESULT.json", file=sys.stderr)
        return 2
    from bot.log import setup_logging
    from training.compare import read_split, run_method
    from training.runtime import quiet_libraries

    setup_logging("info")
    quiet_libraries()
    job = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    cfg = TrainingConfig.model_validate(job["settings"])
    try:
        split = read_split(Path(job["split"]))
        row = run_method(
            cfg,
            split,
            job["info"],
            Path(job["out"]),
            progress=bool(job.get("progress")),
            echo=lambda message: print(message, file=sys.stderr),
        )
    except UserError as error:
        print(f"lorabot compare ({cfg.method}): error: {error}", file=sys.stderr)
        return 1
    Path(argv[1]).write_text(json.dumps(row, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
