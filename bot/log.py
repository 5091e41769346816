"""Structured logging: JSON lines for the daemon and for pipes, readable lines in a terminal.

Everything goes to stderr so that a command's stdout carries only its results. Secrets never reach
a log line: the config keeps them as `SecretStr`, and `redact` drops any key that looks like one.

Libraries log through the standard library (asyncio's "Executing <Task ...> took 0.2 seconds",
aiohttp, alembic) and Python reports `warnings` on stderr. Both are rendered by the same structlog
processors as lorabot's own events, so a JSON log has no line a JSON reader cannot parse: the
stdlib handlers get a `ProcessorFormatter`; each warning, each "Exception ignored in ..." and each
thread that dies of an exception becomes a log record too.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TextIO

import structlog

from bot.errors import UserError

_SECRET_KEYS = ("secret", "api_key", "apikey", "password", "token", "signature", "sign")


def redact(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        lowered = key.lower()
        if any(s in lowered for s in _SECRET_KEYS):
            event[key] = "***"
    return event


class _StderrLogger:
    """Writes each rendered line to whatever `sys.stderr` is *now* (tests swap it)."""

    def msg(self, message: str) -> None:
        stream = sys.stderr
        try:
            stream.write(message + "\n")
            stream.flush()
        except ValueError:  # a closed stream (an interpreter shutting down): drop the line
            pass

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _StderrHandler(logging.StreamHandler):
    """The stdlib handler's twin of `_StderrLogger`."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def _stderr_factory(*_: Any) -> _StderrLogger:
    return _StderrLogger()


def setup_logging(
    level: str = "info",
    fmt: Literal["auto", "console", "json"] = "auto",
    stream: TextIO | None = None,
    file: str = "",
) -> None:
    """Configure structlog and the stdlib root logger (libraries log through it) once.

    `file` (`[log] file`) gets every line too, lorabot's events and the libraries' alike, always
    as JSON whatever stderr gets."""
    out = stream or sys.stderr
    use_json = fmt == "json" or (fmt == "auto" and not _isatty(out))
    numeric = getattr(logging, level.upper(), logging.INFO)
    json_renderer = structlog.processors.JSONRenderer(sort_keys=False)
    renderer: Any = (
        json_renderer if use_json else structlog.dev.ConsoleRenderer(colors=_isatty(out))
    )
    handlers: list[logging.Handler] = [
        _StderrHandler() if stream is None else logging.StreamHandler(out)
    ]
    handlers[0].setFormatter(_formatter(renderer))
    processors = [*_SHARED, structlog.processors.format_exc_info]
    if file:
        to_file = _file_handler(file)
        to_file.setFormatter(_formatter(json_renderer))
        handlers.append(to_file)
        processors.append(_FileTee(to_file, json_renderer))
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=(
            _stderr_factory if stream is None else structlog.PrintLoggerFactory(file=out)
        ),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=max(numeric, logging.WARNING), handlers=handlers, force=True)
    warnings.showwarning = _log_warning
    sys.unraisablehook = _log_unraisable
    threading.excepthook = _log_thread_exception


_WARNING_LISTENERS: list[Callable[[dict[str, Any]], None]] = []
_WARNING_LEVELS = frozenset({"warning", "error", "critical"})


def listen_for_warnings(listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """Tell `listener` of every warning and error event, already redacted, from any thread
    (the console's log panel); returns the function that stops it."""
    _WARNING_LISTENERS.append(listener)
    return lambda: _WARNING_LISTENERS.remove(listener) if listener in _WARNING_LISTENERS else None


def _tell_warning_listeners(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    if _WARNING_LISTENERS and event.get("level") in _WARNING_LEVELS:
        for listener in list(_WARNING_LISTENERS):
            listener(dict(event))
    return event


_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    redact,
    _tell_warning_listeners,
]


def _formatter(renderer: Any) -> logging.Formatter:
    """A stdlib record (a library's log line) through the same processors as lorabot's events."""
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_SHARED,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


class _FileTee:
    """A processor that writes each lorabot event to the `[log] file` as a JSON line, then lets
    it go on to stderr's renderer (lorabot's events do not pass through the stdlib handlers)."""

    def __init__(self, handler: logging.StreamHandler[Any], render: Any) -> None:
        self.handler = handler
        self.render = render

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> dict[str, Any]:
        line = self.render(logger, name, dict(event))
        self.handler.acquire()
        try:
            self.handler.stream.write(f"{line}\n")
            self.handler.flush()
        except (OSError, ValueError):  # a full disk or a closed file must not stop the daemon
            pass
        finally:
            self.handler.release()
        return event


def _log_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """What `warnings.warn` would print raw, as one `py.warnings` event with its fields."""
    logging.getLogger("py.warnings").warning(
        str(message), extra={"category": category.__name__, "where": f"{filename}:{lineno}"}
    )


def _log_unraisable(unraisable: Any) -> None:
    """Python's "Exception ignored in ..." (a failing `__del__`, say) as a log event."""
    error = unraisable.exc_value
    logging.getLogger("python").error(
        "exception ignored",
        exc_info=(unraisable.exc_type, error, unraisable.exc_traceback) if error else None,
        extra={"where": repr(unraisable.object)[:200], "why": unraisable.err_msg or ""},
    )


def _log_thread_exception(args: Any) -> None:
    """An exception that ends a thread, logged as an event rather than printed raw."""
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "?"
    logging.getLogger("python").error(
        f"thread {name} crashed",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def _file_handler(file: str) -> logging.FileHandler:
    """`[log] file`, its folder made first: a fresh install names a log folder not made yet."""
    path = Path(file).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return logging.FileHandler(path, encoding="utf-8")
    except OSError as error:
        raise UserError(f"[log] file {path}: cannot open: {error.strerror or error}") from None


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


if not structlog.is_configured():
    # Before `setup_logging` (library use, tests): still stderr, never a command's stdout.
    structlog.configure(logger_factory=_stderr_factory)


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
