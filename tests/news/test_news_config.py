"""The [news] section: shipped defaults, documented keys, clear errors naming the key."""

from __future__ import annotations

import re
import tomllib

import pytest
from newsfeed_server import FIXTURES

from adapters.news.identity import feed_weights
from bot.config import ConfigError, NewsConfig, Settings, settings_from_dict

CONFIG = FIXTURES.parent.parent.parent / "config.toml"


def _news_section() -> str:
    text = CONFIG.read_text(encoding="utf-8")
    start = text.index("\n[news]\n")
    return text[start : text.index("\n[bybit]\n")]


def test_shipped_config_equals_the_defaults() -> None:
    parsed = settings_from_dict(tomllib.loads(CONFIG.read_text(encoding="utf-8")))
    assert parsed.news == Settings().news == NewsConfig()


def test_every_news_key_is_in_config_toml_with_a_comment() -> None:
    section = _news_section()
    for name in NewsConfig.model_fields:
        if name == "feeds":
            continue
        assert re.search(rf"^{name} = .*#", section, re.MULTILINE), f"[news] {name} is undocumented"


def test_the_example_feeds_in_config_toml_are_valid() -> None:
    lines = []
    for line in _news_section().splitlines():
        stripped = line.removeprefix("# ")
        if stripped.startswith(
            ("[[news.feeds]]", "url =", "name =", "interval =", "weight =", "enabled =")
        ):
            lines.append(stripped)
    feeds = tomllib.loads("\n".join(lines))["news"]["feeds"]
    news = NewsConfig(feeds=feeds)
    assert len(news.feeds) >= 10
    assert all(feed.url.startswith("https://") and feed.name for feed in news.feeds)


@pytest.mark.parametrize(
    ("news", "message"),
    [
        (
            {"feeds": [{"url": "ftp://x.example/feed"}]},
            "[news] feeds.0.url: Value error, 'ftp://x.example/feed' is not an http(s) URL",
        ),
        (
            {"feeds": [{"url": "https://a.example/f"}, {"url": "https://a.example/f"}]},
            "feeds[1]: https://a.example/f is listed twice",
        ),
        ({"poll_intervall": "1m"}, "[news] poll_intervall: unknown key"),
        ({"poll_interval": "soon"}, "[news] poll_interval"),
        ({"poll_interval": 0}, "[news] poll_interval: Input should be greater than 0"),
        ({"feeds": [{"url": "https://a.example/f", "interval": "-1s"}]}, "[news] feeds.0.interval"),
        ({"jitter": 0.9}, "[news] jitter"),
        ({"backoff_initial": "1h", "backoff_max": "1m"}, "backoff_max must not be smaller"),
    ],
)
def test_bad_news_settings_name_the_key(news: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        settings_from_dict({"news": news}, "my.toml")
    assert str(caught.value).startswith("my.toml: ")
    assert message in str(caught.value)


def test_durations_and_feed_weights() -> None:
    news = NewsConfig(
        poll_interval="90s",
        feeds=[
            {
                "url": "https://www.coindesk.com/arc/outboundfeeds/rss/",
                "name": "coindesk",
                "weight": 1.5,
            },
            {"url": "https://cointelegraph.com/rss", "interval": "500ms"},
        ],
    )
    assert news.poll_interval == 90.0 and news.feeds[1].interval == 0.5
    assert feed_weights(news.feeds) == {"coindesk": 1.5, "cointelegraph.com": 1.0}


def test_five_public_crypto_feeds_are_the_defaults_and_a_file_replaces_them() -> None:
    defaults = Settings().news.feeds
    assert [feed.name for feed in defaults] == [
        "coindesk",
        "cointelegraph",
        "decrypt",
        "bitcoinmagazine",
        "theblock",
    ]
    assert all(feed.enabled and feed.url.startswith("https://") for feed in defaults)
    assert settings_from_dict({"news": {"feeds": []}}).news.feeds == ()
    own = settings_from_dict({"news": {"feeds": [{"url": "http://127.0.0.1:1/rss"}]}})
    assert [feed.url for feed in own.news.feeds] == ["http://127.0.0.1:1/rss"]
