"""From a file (or a dict) to `Settings`, or to one `ConfigError` line that names what is wrong.

Whatever the bytes, loading ends in settings or in that one line: an encoding, a TOML syntax
error, a number out of range and an unknown key are all the user's to fix, never a traceback.
"""

from __future__ import annotations

import codecs
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from bot.config.settings import Settings
from bot.config.values import ConfigError

DEFAULT_CONFIG_NAME = "config.toml"

# Longest first: a UTF-32 little-endian BOM begins with the UTF-16 one.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _format_validation_error(source: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        location = [str(p) for p in item["loc"]]
        section = f"[{location[0]}]" if location else ""
        key = ".".join(location[1:])
        where = f"{section} {key}".strip() if key else section
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key (check its spelling against the shipped config.toml)"
        got = item.get("input")
        hidden = item["type"] in ("extra_forbidden", "missing") or isinstance(got, dict | list)
        shown = "" if hidden else f" (got {_shown(got)})"
        parts.append(f"{where or 'top level'}: {message}{shown}")
    return " ".join(f"{source}: {'; '.join(parts)}".splitlines())


def settings_from_dict(data: dict[str, Any], source: str = "config") -> Settings:
    try:
        return Settings.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_format_validation_error(source, error)) from None


def find_config(explicit: str | Path | None) -> Path | None:
    """`--config PATH`, else `./config.toml` if present, else None (built-in defaults)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    local = Path.cwd() / DEFAULT_CONFIG_NAME
    return local if local.is_file() else None


def load_settings(explicit: str | Path | None = None) -> Settings:
    path = find_config(explicit)
    if path is None:
        return Settings()
    return load_settings_file(path)


def decode_config(raw: bytes, source: str) -> str:
    """The file's text: UTF-8, or the UTF-8/16/32 its byte-order mark names."""
    encoding = next((name for bom, name in _BOMS if raw.startswith(bom)), None)
    if encoding is None and b"\x00" in raw:  # TOML never holds NUL; UTF-16/32 text is full of them
        raise ConfigError(
            f"{source}: not UTF-8 text (NUL bytes: UTF-16 or UTF-32 without a byte-order mark?); "
            "save the file as UTF-8"
        )
    encoding = encoding or "utf-8"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{source}: not {encoding.upper()} text (byte {raw[error.start]:#04x} at offset "
            f"{error.start}); save the file as UTF-8"
        ) from None


def load_settings_file(path: Path) -> Settings:
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None
    text = decode_config(raw, str(path))
    try:
        data = tomllib.loads(text)
    except ValueError as error:  # TOMLDecodeError, and an integer too long to convert
        message = " ".join(str(error).split())
        raise ConfigError(f"{path}: not valid TOML: {message}") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid TOML: values nested too deeply") from None
    return settings_from_dict(data, str(path))
