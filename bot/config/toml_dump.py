"""A small TOML writer for the config a run used (tomllib only reads)."""

from __future__ import annotations

import re
from typing import Any


def dump_toml(data: dict[str, Any]) -> str:
    """`data` (plain values, nested tables, arrays of tables) as TOML text; None stays unset."""
    lines: list[str] = []

    def scalar(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return repr(value)
        if isinstance(value, list | tuple):
            return "[" + ", ".join(scalar(v) for v in value) + "]"
        text = str(value).replace("\\", "\\\\").replace('"', '\\"')
        return f'"{text}"'

    def table(prefix: str, values: dict[str, Any]) -> None:
        values = {k: v for k, v in values.items() if v is not None}  # TOML has no null: unset
        simple = {k: v for k, v in values.items() if not isinstance(v, dict) and not _is_aot(v)}
        nested = {k: v for k, v in values.items() if isinstance(v, dict)}
        arrays = {k: v for k, v in values.items() if _is_aot(v)}
        if prefix:
            lines.append(f"[{prefix}]")
        for key, value in simple.items():
            lines.append(f"{_key(key)} = {scalar(value)}")
        lines.append("")
        for key, value in nested.items():
            table(f"{prefix}.{_key(key)}" if prefix else _key(key), value)
        for key, items in arrays.items():
            for item in items:
                name = f"{prefix}.{_key(key)}" if prefix else _key(key)
                lines.append(f"[[{name}]]")
                for k, v in item.items():
                    if v is None:
                        continue
                    lines.append(f"{_key(k)} = {scalar(v)}")
                lines.append("")

    table("", data)
    return "\n".join(lines).strip() + "\n"


def _is_aot(value: Any) -> bool:
    return (
        isinstance(value, list | tuple) and bool(value) and all(isinstance(v, dict) for v in value)
    )


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else f'"{key}"'
