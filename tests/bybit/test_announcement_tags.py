"""Symbol tagging of Bybit announcements: listings and delistings of symbols lorabot knows and of
symbols it does not, market-wide items untagged, and records that cannot be items."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.bybit.announcement_items import parse_announcement
from adapters.bybit.announcement_symbols import announcement_symbols, venue_symbols
from adapters.bybit.fields import ParseError
from adapters.bybit.sim import Simulator
from bot.config import Settings
from bot.store import Store
from bot.symbols import SymbolTable

from .test_announcement_source import _settings, _source

TABLE = SymbolTable.from_settings(Settings())  # BTCUSDT and ETHUSDT, with their aliases


@pytest.mark.parametrize(
    ("title", "tags", "symbols"),
    [
        ("Bybit will delist ABCUSDT perpetual", [], ("ABCUSDT",)),
        ("New Listing: XYZUSDT Perpetual Contract, with up to 50x leverage", [], ("XYZUSDT",)),
        ("Bybit will delist the XYZ perpetual", [], ("XYZUSDT",)),
        ("Delisting of ABC/USDT spot trading pair", ["Spot"], ("ABCUSDT",)),
        ("New listing: 1000PEPEUSDT perpetual", [], ("1000PEPEUSDT",)),
        ("Bybit will delist BTCUSDC perpetual", [], ("BTCUSDC",)),  # not the BTCUSDT lorabot knows
        ("New Listing: BTCUSDT Perpetual Contract", [], ("BTCUSDT",)),
        ("Bybit will list the ETH perpetual with 100x", [], ("ETHUSDT",)),
        ("Delisting of ETH/USDT margin pair", [], ("ETHUSDT",)),
        ("Bitcoin deposits paused during the upgrade", [], ("BTCUSDT",)),
        ("New listing: ABCUSDT and BTCUSDT perpetuals", [], ("BTCUSDT", "ABCUSDT")),
        ("Launchpool: stake to earn", ["XYZUSDT"], ("XYZUSDT",)),  # from the tags
        ("Scheduled system maintenance on all products", ["Maintenance"], ()),
        ("New Perpetual Contracts for the USDT market", [], ()),
        ("Trade USDT perpetual contracts with zero fees", [], ()),
    ],
)
def test_titles_and_tags_name_the_symbols(
    title: str, tags: list[str], symbols: tuple[str, ...]
) -> None:
    assert announcement_symbols(title, tags, TABLE) == symbols


def test_a_bare_perpetual_takes_the_configured_quote() -> None:
    assert venue_symbols("XYZ perpetual", default_quote="USDC") == ["XYZUSDC"]


def _record(**fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "title": "Bybit will delist ABCUSDT perpetual",
        "description": "<p>Trading <b>ends</b> on 1 June.</p>",
        "type": {"title": "Delistings", "key": "delistings"},
        "tags": ["Derivatives"],
        "url": "https://announcements.bybit.com/en-US/article/x-1/?utm_source=feed",
        "dateTimestamp": 1_780_000_000_000,
        "publishTime": 1_780_000_000_000,
    }
    record.update(fields)
    return record


def test_a_record_becomes_clean_fields() -> None:
    announcement = parse_announcement(_record())
    assert announcement.description == "Trading ends on 1 June."
    assert announcement.url == "https://announcements.bybit.com/en-US/article/x-1/"
    assert announcement.type_key == "delistings" and announcement.tags == ("Derivatives",)
    assert announcement.published.year == 2026


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"title": ""}, "title is empty"),
        ({"title": 5}, "title is int, not text"),
        ({"url": "javascript:alert(1)"}, "url 'javascript:alert(1)' is not an http(s) link"),
        ({"type": "delistings"}, "type.key is missing"),
        ({"tags": "Spot"}, "tags is not a list of text"),
        ({"publishTime": "soon"}, "publishTime 'soon' is not milliseconds"),
        ({"publishTime": 1_780_000_000}, "is not a time in milliseconds since 1970"),
        ({"publishTime": None}, "publishTime is NoneType, not milliseconds"),
    ],
)
def test_a_malformed_record_names_its_field(fields: dict[str, Any], reason: str) -> None:
    with pytest.raises(ParseError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_announcement(_record(**fields))


async def test_items_from_the_simulator_carry_their_symbols(sim: Simulator, tmp_path: Any) -> None:
    store = Store(f"sqlite:///{tmp_path / 'news.sqlite'}")
    for title, kind in [
        ("New Listing: BTCUSDT Perpetual Contract", "new_crypto"),
        ("Bybit will delist ABCUSDT perpetual", "delistings"),
        ("Scheduled maintenance of the exchange", "maintenance_updates"),
    ]:
        sim.announcements.add(title, kind)
    source = _source(_settings(sim), store)
    try:
        result = await source.poll()
    finally:
        await source.rest.close()
        store.close()
    tagged = {item.title: item.symbols for item in result.items}
    assert tagged == {
        "New Listing: BTCUSDT Perpetual Contract": ("BTCUSDT",),
        "Bybit will delist ABCUSDT perpetual": ("ABCUSDT",),
        "Scheduled maintenance of the exchange": (),
    }
