"""The kill switch as a file: the one thing the console (and `lorabot kill`) may write.

The daemon polls the file every `[risk] kill_switch_poll` and flattens and halts while it
exists, so every way of pulling the switch (the CLI, the console, Telegram) is this one file.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from bot.events import iso


def set_kill_switch(path: Path, on: bool, now: datetime, reason: str = "manual") -> bool:
    """Turn the switch on (writing when and why) or off; returns whether it was on before."""
    existed = path.exists()
    if on:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{iso(now)} {reason}\n", encoding="utf-8")
    else:
        path.unlink(missing_ok=True)
    return existed
