"""Which symbols a Bybit announcement is about, from its title and tags.

An announcement names its contracts the venue's way: "Bybit will delist ABCUSDT perpetual",
"New Listing: XYZUSDT Perpetual Contract", "Delisting of ABC/USDT spot pair", "XYZ perpetual".
Those names are read as Bybit symbols whether or not lorabot knows them, because an item about a
symbol lorabot does not trade must still carry that symbol: untagged, the signal service would
take it for market-wide news and move every target. Besides the venue's names, the symbol table's
own aliases and base coins ("Bitcoin", "BTC") tag the symbols lorabot knows. An item that names
no symbol at all (maintenance of the whole exchange) stays untagged: market-wide.

The description is not read: it lists related pairs and past campaigns, which would tag far more
than the item is about.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.symbols import SymbolTable

# Quotes of Bybit's contract and pair names; PERP is the USDC perpetuals' suffix (BTCPERP).
VENUE_QUOTES = ("USDT", "USDC", "PERP")
_BASE = r"[A-Z0-9]{2,20}?"
_SYMBOL = re.compile(rf"(?<![A-Za-z0-9])({_BASE})/?({'|'.join(VENUE_QUOTES)})(?![A-Za-z0-9])")
_PERPETUAL = re.compile(r"(?<![A-Za-z0-9])([A-Z0-9]{2,20})\s+perpetual", re.IGNORECASE)
_NOT_A_COIN = frozenset({"THE", "NEW", "OF", "AND", "FOR", "ALL", "USDT", "USDC", "USD"})


def venue_symbols(text: str, default_quote: str = "USDT") -> list[str]:
    """Bybit symbol names in `text`, in order of appearance, each once.

    `ABCUSDT`, `ABC/USDT` and `ABCPERP` are read as written; `ABC perpetual` (a base coin before
    "perpetual") is `ABC` + `default_quote`, Bybit's linear naming.
    """
    found: list[str] = []
    for match in _SYMBOL.finditer(text):
        base = match.group(1)
        if base.isdigit():
            continue
        found.append(base + match.group(2))
    for match in _PERPETUAL.finditer(text):
        word = match.group(1)
        if not word.isupper() or word in _NOT_A_COIN or word.isdigit():
            continue
        if not word.endswith(VENUE_QUOTES):
            found.append(word + default_quote)
    return list(dict.fromkeys(found))


def announcement_symbols(
    title: str, tags: Iterable[str], symbols: SymbolTable, default_quote: str = "USDT"
) -> tuple[str, ...]:
    """The item's symbols: the table's own first (table order), then unknown venue names.

    A venue name the table knows by another spelling (`resolve`) counts as the table's symbol.
    """
    texts = [title, *tags]
    known = list(symbols.tag(*texts))
    others: list[str] = []
    for text in texts:
        for name in venue_symbols(text, default_quote):
            resolved = symbols.resolve(name)
            if resolved is not None:
                if resolved not in known:
                    known.append(resolved)
            elif name not in others:
                others.append(name)
    return (*known, *others)
