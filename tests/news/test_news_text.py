"""Text cleaning, ids and parsing, without the network."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from newsfeed_server import fixture_bytes

from adapters.news.clean import clean_text, first_sentence, title_key, truncate
from adapters.news.errors import FeedError
from adapters.news.identity import entry_id, normalise_link, source_name
from adapters.news.parse import parse_feed


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ('<b>Bitcoin</b> <script>alert("x")</script>jumps &amp; holds', "Bitcoin jumps & holds"),
        ("&lt;b&gt;Twice&lt;/b&gt; escaped &amp;amp; more", "Twice escaped & more"),
        ("BTC<ETH fees and S&P 500 < 5,000", "BTC<ETH fees and S&P 500 < 5,000"),
        ("AT&T beats", "AT&T beats"),
        ("<p>One</p><p>Two</p><br>Three", "One Two Three"),
        ("<style>p{color:red}</style>Text<noscript>x</noscript>", "Text"),
        ('<img src=x onerror="alert(1)">Hello', "Hello"),
        ("Multi\n\tline\u200b  text\u00a0here\x00", "Multi line text here"),
        ("Ether&nbsp;&mdash;&nbsp;steady", "Ether — steady"),
        ("Cafe\u0301 unicode", "Café unicode"),
        ("", ""),
    ],
)
def test_clean_text(raw: str, clean: str) -> None:
    assert clean_text(raw) == clean


def test_truncate_cuts_at_a_word_and_marks_it() -> None:
    text = "Bitcoin rallies past seventy thousand dollars as inflows surge"
    short = truncate(text, 30)
    assert short.endswith("…") and len(short) <= 30
    assert short == "Bitcoin rallies past seventy…"
    assert truncate(text, len(text)) == text
    assert truncate(text, 0) == ""


def test_title_key_ignores_case_accents_and_punctuation() -> None:
    assert title_key("Bitcoin Surges 10%: ETF Approval!") == title_key(
        "bitcoin surges 10 - etf approval"
    )
    assert title_key("Éther rises") == title_key("ether RISES")
    assert title_key("Bitcoin rises") != title_key("Bitcoin falls")


def test_first_sentence() -> None:
    assert first_sentence("Hashrate hits a record. More follows.") == "Hashrate hits a record."


def test_entry_ids() -> None:
    feed = "https://www.wire.example.com/rss"
    # A bare guid is only unique within its publisher: qualified by the feed's host.
    assert entry_id("1001", "", feed_url=feed, source="w", title="t") == "wire.example.com#1001"
    # A URI guid is global, tracking noise removed.
    assert (
        entry_id(
            "https://Wire.example.com/a?utm_source=rss&id=3#top",
            "",
            feed_url=feed,
            source="w",
            title="t",
        )
        == "https://wire.example.com/a?id=3"
    )
    assert entry_id("tag:x.org,2024:1", "", feed_url=feed, source="w", title="t") == (
        "tag:x.org,2024:1"
    )
    assert entry_id("", "https://wire.example.com/b", feed_url=feed, source="w", title="t") == (
        "https://wire.example.com/b"
    )
    by_title = entry_id("", "", feed_url=feed, source="w", title="Only a title")
    assert by_title.startswith("sha1:")
    assert by_title == entry_id("", "", feed_url=feed, source="w", title="only a title ")
    long_guid = "x" * 2000
    assert len(entry_id(long_guid, "", feed_url=feed, source="w", title="t")) < 100


def test_links_and_source_names() -> None:
    assert normalise_link("/a/b?utm_medium=x&fbclid=y&page=2", "https://Ex.com/feed") == (
        "https://ex.com/a/b?page=2"
    )
    assert source_name("https://www.coindesk.com/arc/rss/") == "coindesk.com"
    assert source_name("https://www.coindesk.com/arc/rss/", " coindesk ") == "coindesk"


def test_parse_rss_and_atom() -> None:
    feed = parse_feed(fixture_bytes("rss2.xml"), url="https://wire.example.com/rss")
    assert [e.title for e in feed.entries] == [
        "Bitcoin rallies past $70,000 as ETF inflows surge",
        "Ethereum developers set date for next network upgrade",
        "Fed holds rates steady, signals patience",
    ]
    first = feed.entries[0]
    assert first.link == "https://wire.example.com/news/bitcoin-rallies"
    assert first.body == "Spot bitcoin ETFs took in $400m on Friday, the most in a month."
    assert first.published == datetime(2024, 5, 6, 10, 15, tzinfo=UTC)
    assert feed.entries[2].published == datetime(2024, 5, 6, 10, 0, tzinfo=UTC)  # -0400 to UTC
    assert first.raw["dc_creator" if "dc_creator" in first.raw else "author"] == "Jane Doe"
    atom = parse_feed(fixture_bytes("atom.xml"), url="https://markets.example.org/atom.xml")
    assert [e.title for e in atom.entries] == [
        "Solana outage halts block production",
        "Ether options open interest hits record",
    ]
    assert atom.entries[1].link == "https://markets.example.org/2024/05/eth-options"
    assert atom.entries[1].body == "Traders piled into ETH calls."
    assert atom.entries[1].published == datetime(2024, 5, 6, 8, 2, tzinfo=UTC)


def test_parse_keeps_what_a_broken_feed_still_holds() -> None:
    feed = parse_feed(fixture_bytes("broken.xml"), url="https://h.example/broken.xml")
    assert [e.title for e in feed.entries] == [
        "Binance lists new perpetual contracts",
        "XRP case: court sets hearing date",
    ]
    assert "not well-formed XML at line 17" in feed.warning
    assert feed.invalid == ["entry 3: no title and no guid or link"]


def test_parse_counts_invalid_entries() -> None:
    feed = parse_feed(fixture_bytes("invalid_entries.xml"), url="https://h.example/i.xml")
    assert [e.title for e in feed.entries] == [
        "Valid headline about ether staking",
        "No title, but a body: Bitcoin hashrate reaches a new high.",
    ]
    assert feed.invalid == [
        "entry 2: no title and no guid or link",
        "entry 3: no title and no text (https://empty.example.com/only-a-link)",
    ]


@pytest.mark.parametrize("content_type", ["", "application/rss+xml", "text/xml"])
def test_parse_undeclared_cp1251_is_detected(content_type: str) -> None:
    feed = parse_feed(
        fixture_bytes("cp1251.xml"), url="https://h.example/ru", content_type=content_type
    )
    assert [e.title for e in feed.entries] == [
        "Биткоин растёт после решения регулятора",
        "Эфир падает на фоне новостей о регулировании",
    ]


def test_parse_latin1_declared_in_the_prolog() -> None:
    feed = parse_feed(fixture_bytes("latin1.xml"), url="https://h.example/fr")
    assert feed.entries[0].title == "Marchés : le bitcoin progresse, l'éther recule à Zürich"


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            fixture_bytes("page.html"),
            "text/html; charset=utf-8",
            "not an RSS or Atom feed: got an HTML page (text/html); the page links a feed at "
            "https://h.example/feeds/all.rss",
        ),
        (b'{"items": []}', "application/json", "not an RSS or Atom feed (application/json)"),
        (b"   \n", "application/rss+xml", "empty response body"),
    ],
)
def test_parse_refuses_what_is_not_a_feed(body: bytes, content_type: str, message: str) -> None:
    with pytest.raises(FeedError) as caught:
        parse_feed(body, url="https://h.example/feed", content_type=content_type)
    assert caught.value.reason.startswith(message)
    assert str(caught.value).startswith("https://h.example/feed: ")


def test_parse_never_reads_a_local_file_named_by_the_body(tmp_path: Path) -> None:
    # feedparser treats a bytes argument as a file name first; the parser must never do that.
    secret = tmp_path / "secret.xml"
    secret.write_bytes(fixture_bytes("rss2.xml"))
    with pytest.raises(FeedError, match="not an RSS or Atom feed"):
        parse_feed(str(secret).encode(), url="https://h.example/feed", content_type="text/plain")
