"""One self-contained HTML page: tables and PNG charts inline, nothing fetched from a network.

A report a user can mail, archive or open offline years later must carry everything it shows, so
images are embedded as base64 data URIs and the styling is a short inline stylesheet. Every text
is escaped: headlines and source names come from the outside world.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

Cell = str | int | float | None


@dataclass(frozen=True)
class Table:
    columns: Sequence[str]
    rows: Sequence[Sequence[Cell]]
    caption: str = ""


@dataclass(frozen=True)
class Image:
    png: bytes
    alt: str

    @classmethod
    def from_file(cls, path: Path, alt: str) -> Image:
        return cls(png=Path(path).read_bytes(), alt=alt)


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Html:
    """Markup written by lorabot itself (the interactive charts), placed as it is: never text
    from outside, which goes in `Text` or `Table` and is escaped."""

    markup: str


Block = Table | Image | Text | Html

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: 0.3em 0; }
img { max-width: 100%; }
"""


def format_cell(value: Cell) -> str:
    """Numbers to four significant digits; a missing figure is an em dash, never 'nan'."""
    if value is None:
        return "\u2014"
    if isinstance(value, float):
        if value != value:  # NaN
            return "\u2014"
        return f"{value:.4g}"
    return str(value)


def render(title: str, sections: Mapping[str, Sequence[Block]]) -> str:
    """The page as text: one <h2> per section, its blocks in order."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for heading, blocks in sections.items():
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        parts.extend(_block(block) for block in blocks)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write(path: Path, title: str, sections: Mapping[str, Sequence[Block]]) -> Path:
    path = Path(path)
    path.write_text(render(title, sections), encoding="utf-8")
    return path


def _block(block: Block) -> str:
    if isinstance(block, Html):
        return block.markup
    if isinstance(block, Text):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in block.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(format_cell(c))}</td>" for c in row) + "</tr>"
        for row in block.rows
    )
    caption = f"<caption>{html.escape(block.caption)}</caption>" if block.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
