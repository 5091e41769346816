from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from bot.config import (
    ConfigError,
    Secrets,
    Settings,
    load_settings,
    load_settings_file,
    parse_duration,
    settings_from_dict,
)

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_config_equals_builtin_defaults() -> None:
    assert load_settings_file(ROOT / "config.toml") == Settings()


def _keys(model: type, prefix: str = "") -> set[str]:
    from pydantic import BaseModel

    out: set[str] = set()
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out |= _keys(annotation, f"{prefix}{name}.")
        else:
            out.add(f"{prefix}{name}")
    return out


def test_every_setting_is_documented_in_config_toml() -> None:
    text = (ROOT / "config.toml").read_text()
    data = tomllib.loads(text)
    sections = {k for k in _keys(Settings) if "." in k}
    for key in sorted(sections):
        section, name = key.split(".", 1)
        if section == "news" and name == "feeds":
            assert "[[news.feeds]]" in text
            continue
        table = data.get(section, {})
        *tables, last = name.split(".")  # a nested table: [bybit.announcements] interval
        for inner in tables:
            table = table.get(inner, {})
        assert last in table, f"[{section}] {name} is missing from config.toml"
    for line in text.splitlines():
        if re.match(r"^[a-z_]+ = ", line):
            assert "#" in line, f"undocumented setting: {line}"


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"\[strategy\] treshold: unknown key"):
        settings_from_dict({"strategy": {"treshold": 0.5}}, "x.toml")


def test_bad_value_names_key_and_value() -> None:
    with pytest.raises(ConfigError, match=r"x.toml: \[strategy\] threshold: .*1.5"):
        settings_from_dict({"strategy": {"threshold": 1.5}}, "x.toml")
    with pytest.raises(ConfigError, match=r"\[news\] timeout"):
        settings_from_dict({"news": {"timeout": "soon"}}, "x.toml")


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine\nmode = 'paper'\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml")


def test_config_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings() == Settings()
    (tmp_path / "config.toml").write_text("[strategy]\nthreshold = 0.7\n")
    assert load_settings().strategy.threshold == 0.7
    other = tmp_path / "other.toml"
    other.write_text("[strategy]\nthreshold = 0.8\n")
    assert load_settings(other).strategy.threshold == 0.8


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("15m", 900),
        ("2h", 7200),
        ("1d", 86400),
        (12, 12.0),
        ("7", 7),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_money_is_decimal_even_from_a_toml_float() -> None:
    settings = settings_from_dict({"symbols": {"BTCUSDT": {"tick_size": 0.1}}})
    assert str(settings.symbols["BTCUSDT"].tick_size) == "0.1"


def test_secrets_only_from_env_and_never_printed() -> None:
    secrets = Secrets.from_env(
        Settings().bybit, {"BYBIT_API_KEY": "k3y", "BYBIT_API_SECRET": "s3cr3t"}
    )
    assert secrets.complete
    assert "s3cr3t" not in repr(secrets) and "k3y" not in repr(secrets)
    assert "s3cr3t" not in Settings().model_dump_json()


def test_the_config_a_run_writes_reads_back_equal(tmp_path: Path) -> None:
    from bot.config import dump_toml

    settings = settings_from_dict(
        {
            "news": {
                "feeds": [
                    {"url": "https://a.example/f"},
                    {"url": "https://b.example/f", "interval": "5m"},
                ]
            }
        }
    )
    path = tmp_path / "used.toml"
    path.write_text(dump_toml(settings.to_toml_dict()), encoding="utf-8")
    assert load_settings_file(path) == settings
    path.write_text(dump_toml(Settings().to_toml_dict()), encoding="utf-8")
    assert load_settings_file(path) == Settings()
