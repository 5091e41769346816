"""What the file readers share: the list of row problems, opening text, the number rules.

A file with a bad row is refused as a whole, with the first few problems named `file:line: what
is wrong`, rather than replayed with holes. Every number read must be finite and within its range:
a price of `inf` or `1e400` is not a price (it would write inf into equity.csv and crash the fill),
so it is an error at its line, never a value.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, NoReturn

from bot.errors import InputError
from bot.log import get_logger

log = get_logger("adapters.files")

MAX_REPORTED = 5

# Beyond this a float loses the number (1e400 is inf) or the arithmetic on it overflows; no real
# price or volume comes near it.
LIMIT = Decimal("1e18")


class Problems:
    """Collects row errors so one message can name several, then raises.

    With `skip` (`--skip-bad-rows`) a bad row is reported (a warning with its reason) and left
    out instead; what makes the whole file unreadable (its header, its JSON) is `fatal` either way.
    """

    def __init__(self, path: Path, *, skip: bool = False) -> None:
        self.path = path
        self.skip = skip
        self.items: list[str] = []
        self.count = 0

    @property
    def refused(self) -> bool:
        """Whether the file will be refused (so nothing more need be released)."""
        return bool(self.count) and not self.skip

    def add(self, line: int | str, message: str) -> None:
        """`line` is a line number, or a line and a place in it (`"1: row 5"`, for JSON)."""
        self.count += 1
        where = max(line, 1) if isinstance(line, int) else line
        if self.skip:
            log.warning("bad row skipped", where=f"{self.path}:{where}", reason=message)
        elif len(self.items) < MAX_REPORTED:
            self.items.append(f"{self.path}:{where}: {message}")

    def fatal(self, line: int | str, message: str) -> NoReturn:
        """A problem no skipping gets past: raise it (with any rows already found bad)."""
        self.skip = False
        self.add(line, message)
        self.raise_if_any()
        raise AssertionError("unreachable")

    def raise_if_any(self) -> None:
        if self.skip:
            if self.count:
                log.warning("bad rows skipped", path=str(self.path), rows=self.count)
            return
        if self.count:
            more = (
                f" (and {self.count - len(self.items)} more)"
                if self.count > len(self.items)
                else ""
            )
            raise InputError("; ".join(self.items) + more)


def open_text(path: Path) -> IO[str]:
    """The file as UTF-8 text; a byte order mark (as spreadsheets write) is accepted and dropped."""
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if not path.is_file():
        raise InputError(f"{path}: not a file")
    try:
        return path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise InputError(f"{path}: cannot read: {error.strerror}") from None


def not_utf8(path: Path, error: UnicodeDecodeError) -> InputError:
    return InputError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})")


def bad_values(o: Decimal, h: Decimal, low: Decimal, c: Decimal, v: Decimal) -> str | None:
    """What is wrong with a bar's numbers, or None: finite, in range, and consistent."""
    values = (o, h, low, c, v)
    for name, value in zip(("open", "high", "low", "close", "volume"), values, strict=True):
        if not value.is_finite():
            return f"{name} {value} is not a finite number"
        if value.copy_abs() >= LIMIT:
            return f"{name} {value} is out of range (at most {LIMIT:.0E})"
    if low <= 0:
        return f"prices must be positive (low {low})"
    if v < 0:
        return f"volume {v} is negative"
    if not (low <= o <= h and low <= c <= h):
        return f"inconsistent bar (open {o}, high {h}, low {low}, close {c}, volume {v})"
    return None


def to_decimal(text: object) -> Decimal:
    """A JSON or CSV number as a Decimal; ValueError when it is not one."""
    try:
        return Decimal(str(text).strip())
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a number") from None


def unicode_problem(*texts: str) -> str | None:
    """A lone surrogate (JSON can spell one as \\ud800) is no text: the store cannot encode it."""
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            return f"text with an invalid character {text[error.start]!r} (a lone surrogate)"
    return None
