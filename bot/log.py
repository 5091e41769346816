"""Structured logging: JSON lines for the daemon and for pipes, readable lines in a terminal.

Everything goes to stderr so that a command's stdout carries only its results. Secrets never reach
a log line: the config keeps them as `SecretStr`, and `redact` drops any key that looks like one.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

_SECRET_KEYS = ("secret", "api_key", "apikey", "password", "token", "signature", "sign")


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if any(s in lowered for s in _SECRET_KEYS):
            event[key] = "***"
    return event


def setup_logging(
    level: str = "info",
    fmt: Literal["auto", "console", "json"] = "auto",
    stream: TextIO | None = None,
    file: str = "",
) -> None:
    """Configure structlog and the stdlib root logger (libraries log through it) once."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not _isatty(out))
    numeric = getattr(logging, level.upper(), logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(sort_keys=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=_isatty(out))
    )
    processors = [*shared, structlog.processors.format_exc_info, renderer]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    handlers: list[logging.Handler] = [logging.StreamHandler(out)]
    if file:
        handlers.append(logging.FileHandler(file, encoding="utf-8"))
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=handlers, force=True)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
