"""Feed text to plain text: what the model reads and what a terminal can print safely.

Feeds put HTML, escaped HTML, scripts and entities into titles and summaries (feedparser hands
them on as found). Everything here ends as one line of plain text: tags stripped (the contents of
script/style dropped), entities decoded, Unicode normalised, control and zero-width characters
removed, whitespace collapsed. Text that only looks like a tag (`BTC<ETH`, `S&P < 4000`) is kept:
only known HTML element names are treated as markup, so a headline never loses words to a guess.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

# Elements whose text is never news (their contents are dropped, not just their tags).
_DROP_CONTENT = frozenset(
    {"script", "style", "noscript", "template", "iframe", "object", "svg", "math", "head", "title"}
)
# Elements that separate words: stripping them must leave a space, not glue two words together.
_BLOCK = frozenset(
    {
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
        "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "img",
        "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th",
        "thead", "tr", "ul", "video", "audio", "source", "picture", "caption", "summary",
        "details",
    }
)  # fmt: skip
_INLINE = frozenset(
    {
        "a", "abbr", "b", "bdi", "bdo", "big", "body", "center", "cite", "code", "data", "del",
        "dfn", "em", "font", "html", "i", "ins", "kbd", "label", "link", "mark", "meta", "q", "rp",
        "rt", "ruby", "s", "samp", "small", "span", "strike", "strong", "sub", "sup", "time",
        "tt", "u", "var", "wbr", "input", "button", "select", "option", "textarea", "area", "map",
        "canvas", "embed", "param", "track", "col", "colgroup", "legend", "fieldset", "base",
        "output", "progress", "meter", "dialog", "menu", "slot", "image", "nobr",
    }
)  # fmt: skip
_KNOWN = _DROP_CONTENT | _BLOCK | _INLINE

# Invisible characters (zero-width, soft hyphen, BOM, bidi controls) go; control characters and
# line/paragraph separators become spaces. Regexes, not a per-character category lookup: this
# runs on every title and body of every poll.
_INVISIBLE = re.compile("[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_WHITESPACE = re.compile(r"\s+")
_NOT_WORD = re.compile(r"[^\w]+")
_LOOKS_LIKE_MARKUP = re.compile(r"<[A-Za-z/!?]|&(?:#\d+|#x[0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]{1,31});")


class _TextExtractor(HTMLParser):
    """Collects text; unknown "tags" are put back as the text they were."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._dropping: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _KNOWN:
            if not self._dropping:
                self.parts.append(self.get_starttag_text() or "")
            return
        if tag in _DROP_CONTENT:
            self._dropping.append(tag)
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _KNOWN:
            if tag in _BLOCK:
                self.parts.append(" ")
        elif not self._dropping:
            self.parts.append(self.get_starttag_text() or "")

    def handle_endtag(self, tag: str) -> None:
        if tag not in _KNOWN:
            if not self._dropping:
                self.parts.append(f"</{tag}>")
            return
        if tag in _DROP_CONTENT:
            if tag in self._dropping:
                while self._dropping and self._dropping.pop() != tag:
                    pass
        elif tag in _BLOCK:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._dropping:
            self.parts.append(data)

    def text(self) -> str:
        self.close()
        return "".join(self.parts)


def strip_html(text: str) -> str:
    """Plain text from text that may hold HTML, escaped or not (entities decoded either way)."""
    # A feed that escapes its HTML twice (`&lt;b&gt;`) hands feedparser markup as text: after one
    # round of unescaping it is markup again, so strip until nothing that looks like markup is left
    # (bounded: a title cannot fool this into a loop).
    for _ in range(3):
        if not _LOOKS_LIKE_MARKUP.search(text):
            break
        parser = _TextExtractor()
        parser.feed(text)
        stripped = parser.text()
        if stripped == text:
            break
        text = stripped
    return html.unescape(text) if "&" in text else text


def normalise_space(text: str) -> str:
    """NFC, no control or zero-width characters, single spaces, no leading/trailing space."""
    text = _CONTROL.sub(" ", _INVISIBLE.sub("", unicodedata.normalize("NFC", text)))
    return _WHITESPACE.sub(" ", text).strip()


def clean_text(text: str | None) -> str:
    """HTML stripped, entities decoded, whitespace normalised: one line of plain text."""
    if not text:
        return ""
    return normalise_space(strip_html(text))


def truncate(text: str, max_chars: int) -> str:
    """Cut to at most `max_chars`, at a word boundary when one is near, marked with an ellipsis."""
    if max_chars <= 0:
        return ""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    if space >= max_chars * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:-–—") + "…"


def first_sentence(text: str, max_chars: int = 200) -> str:
    """A stand-in title for an entry that has only a body."""
    match = re.search(r"(?<=[.!?])\s", text)
    sentence = text[: match.start()] if match else text
    return truncate(sentence.strip(), max_chars)


def title_key(title: str) -> str:
    """The title reduced to what two outlets would share: case, accents, punctuation dropped.

    Used to see the same story arriving from two feeds under two ids.
    """
    folded = title.casefold()
    if not folded.isascii():  # most titles are ASCII: skip the per-character work for them
        folded = unicodedata.normalize("NFKD", folded)
        folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return _WHITESPACE.sub(" ", _NOT_WORD.sub(" ", folded).replace("_", " ")).strip()
