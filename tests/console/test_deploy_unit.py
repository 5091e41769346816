"""The systemd unit and the compose health check match what `lorabot run` offers."""

from __future__ import annotations

import configparser
from pathlib import Path

from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[2]


def test_the_unit_is_a_notify_service_with_a_watchdog_that_restarts() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(ROOT / "deploy" / "lorabot.service")
    service = unit["Service"]
    assert service["Type"] == "notify"
    assert int(service["WatchdogSec"]) > 1  # more than the 1 s tick that feeds it
    assert service["Restart"] == "always"
    assert "run" in service["ExecStart"].split() and "--sd-notify" in service["ExecStart"]
    assert service["StateDirectory"] == "lorabot" and service["CacheDirectory"] == "lorabot"
    text = (ROOT / "deploy" / "lorabot.service").read_text(encoding="utf-8")
    assert "Environment=XDG_DATA_HOME=/var/lib\n" in text  # the store: /var/lib/lorabot
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_run_offers_sd_notify() -> None:
    from bot.cli import cli

    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0 and "--sd-notify" in result.output


def test_compose_checks_health() -> None:
    compose = (ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8")
    assert "healthcheck:" in compose and "http://127.0.0.1:8080/health" in compose
