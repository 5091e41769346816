"""Whatever is fed to the config loader ends in settings or in one ConfigError line (11.5, 11.10).

Random bytes, random TOML built from the real section and key names with hostile values (NaN,
infinity, huge integers, negative durations, nested tables), and random dicts: an internal error
(anything but ConfigError) or a multi-line message fails the test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import ConfigError, Settings, SymbolConfig, load_settings_file, settings_from_dict

SECTIONS = {
    name: list((SymbolConfig if name == "symbols" else field.annotation).model_fields)  # type: ignore[union-attr]
    for name, field in Settings.model_fields.items()
}
pytestmark = pytest.mark.slow  # 1,200 examples: about a minute on a loaded machine

KEYS = sorted({key for keys in SECTIONS.values() for key in keys})

number_text = st.one_of(
    st.from_regex(r"-?[0-9]{1,400}(\.[0-9]{0,20})?([eE][-+]?[0-9]{1,6})?", fullmatch=True),
    st.sampled_from(["nan", "inf", "-inf", "+nan", "0", "-0", "1e400", "0x7f", "1_000", "0o17"]),
)
duration_text = st.from_regex(r"-?[0-9]{1,40}(\.[0-9]{1,5})?\s?(ms|s|m|h|d)?", fullmatch=True)
toml_value = st.one_of(
    number_text,
    duration_text.map(lambda text: f'"{text}"'),
    number_text.map(lambda text: f'"{text}"'),
    st.sampled_from(["true", "false", "[]", "{}", '""', "1979-05-27T07:32:00Z", '"~nobody/x"']),
    st.text(max_size=20).map(lambda text: '"' + text.replace("\\", "").replace('"', "") + '"'),
    st.lists(number_text, max_size=3).map(lambda items: "[" + ", ".join(items) + "]"),
)


@st.composite
def toml_documents(draw: st.DrawFn) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        section = draw(st.sampled_from([*SECTIONS, "nope"]))
        if section == "symbols":
            lines.append(
                f"[symbols.{draw(st.sampled_from(['BTCUSDT', 'ETHUSDT', 'SOLUSDT', 'x']))}]"
            )
        elif section == "news" and draw(st.booleans()):
            lines.append("[[news.feeds]]")
            lines.append(
                f'url = "{draw(st.sampled_from(["https://a.example/f", "ftp://x", "http://[::1"]))}"'
            )
        else:
            lines.append(f"[{section}]")
        for key in draw(
            st.lists(st.sampled_from([*SECTIONS.get(section, []), *KEYS]), max_size=4, unique=True)
        ):
            lines.append(f"{key} = {draw(toml_value)}")
    text = "\n".join(lines) + "\n"
    if draw(st.booleans()):  # damage it: cut it or splice in random characters
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=5)) + text[cut:]
    return text


plain = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
    number_text,
    duration_text,
)
values = st.recursive(
    plain,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(KEYS), inner, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def config_dicts(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 20)) == 0:
        return draw(values)
    data: dict[Any, Any] = {}
    for section in draw(st.lists(st.sampled_from([*SECTIONS, "nope"]), max_size=4, unique=True)):
        if section == "symbols":
            names = st.sampled_from(["BTCUSDT", "ETHUSDT", "SOLUSDT", "btc"])
            keys = st.sampled_from(SECTIONS["symbols"])
            data[section] = draw(st.dictionaries(names, st.dictionaries(keys, values), max_size=3))
        else:
            keys = st.sampled_from(SECTIONS.get(section, KEYS))
            data[section] = draw(st.dictionaries(keys, values, max_size=5))
    return data


def _result_or_one_line(load: Any) -> None:
    try:
        result = load()
    except ConfigError as error:
        message = str(error)
        assert message and "\n" not in message and "\r" not in message, message
        return
    assert isinstance(result, Settings)


_FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_DIR = Path(tempfile.mkdtemp(prefix="lorabot-config-fuzz-"))


def _from_bytes(raw: bytes) -> Settings:
    path = _DIR / "config.toml"
    path.write_bytes(raw)
    return load_settings_file(path)


@_FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(raw: bytes) -> None:
    _result_or_one_line(lambda: _from_bytes(raw))


@_FUZZ
@given(st.binary(max_size=40), st.sampled_from([b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff", b""]))
def test_random_bytes_after_a_byte_order_mark(raw: bytes, bom: bytes) -> None:
    _result_or_one_line(lambda: _from_bytes(bom + raw))


@_FUZZ
@given(toml_documents(), st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-32"]))
def test_random_toml_from_real_keys(text: str, encoding: str) -> None:
    _result_or_one_line(lambda: _from_bytes(text.encode(encoding, "surrogatepass")))


@_FUZZ
@given(config_dicts())
def test_random_dicts(data: Any) -> None:
    _result_or_one_line(lambda: settings_from_dict(data, "fuzz"))
