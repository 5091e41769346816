"""The console of a running paper daemon (a real `python -m bot run --replay-news --replay-bars`
subprocess) answered over HTTP on 127.0.0.1: the JSON API, /metrics through prometheus-client's
own parser, the kill switch's token rules, and no configured secret in any answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.console.daemon import SECRETS, Daemon, kill_file, request, start, wait_decisions
from tests.core.store_daemon import wait_for

pytestmark = pytest.mark.slow  # one daemon for the module: about ten seconds

ANSWERS: list[bytes] = []  # every response body and header of this module, for the secret grep


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    running = start(tmp_path_factory.mktemp("console-api"))
    try:
        wait_decisions(running, 3)
        yield running
    finally:
        running.stop()


def get(daemon: Daemon, path: str, token: str | None = None) -> tuple[int, bytes]:
    status, body, headers = daemon.get(path, token)
    ANSWERS.append(body)
    ANSWERS.append(json.dumps(headers).encode())
    return status, body


def post(daemon: Daemon, path: str, token: str | None = None) -> tuple[int, bytes]:
    status, body, headers = request(daemon.url + path, token=token, method="POST")
    ANSWERS.append(body + json.dumps(headers).encode())
    return status, body


def test_status_shows_the_run_its_model_equity_and_feeds(daemon: Daemon) -> None:
    # the snapshot is the tick's (once a second): it may be a headline behind the store
    wait_for(lambda: daemon.json("/api/v1/status")["decisions"] >= 3, 10, "a tick after 3")
    status, body = get(daemon, "/api/v1/status")
    data = json.loads(body)
    assert status == 200
    assert data["mode"] == "paper" and data["account"] == "paper"
    assert data["model"]["id"].startswith("lexicon")
    assert data["healthy"] is True and data["heartbeat_age_s"] < 3
    assert data["feeds"]["test"]["items"] >= 3 and data["feeds"]["test"]["errors"] == 0
    assert data["decisions"] >= 3 and data["kill_switch"] is False
    assert isinstance(data["quality"], list)  # signal quality so far (no horizon passed yet)
    assert float(data["equity"]) > 0
    (bars,) = data["links"]  # paper mode on a bars file: the one market stream (up while it plays)
    assert bars["name"] == "bars file" and isinstance(bars["up"], bool) and bars["messages"] >= 1


def test_decisions_carry_headline_outcome_and_page_back(daemon: Daemon) -> None:
    _, body = get(daemon, "/api/v1/decisions?limit=2")
    page = json.loads(body)
    first = page["decisions"]
    assert len(first) == 2 and first[0]["ts"] >= first[1]["ts"]  # newest first
    titles = {"Bitcoin surges as ETF inflows jump", "Bitcoin plunges after exchange hack"}
    assert all(d["headline"] in titles and d["source"] == "test" for d in first)
    assert first[0]["outcome"] == "order" and first[0]["order_id"]
    _, body = get(daemon, f"/api/v1/decisions?limit=2&before={page['next']}")
    older = json.loads(body)["decisions"]
    assert older and older[0]["ts"] <= first[-1]["ts"] and older[0]["id"] != first[-1]["id"]
    _, body = get(daemon, "/api/v1/decisions?outcome=no+such+outcome")
    assert json.loads(body)["decisions"] == []


def test_orders_fills_positions_and_equity(daemon: Daemon) -> None:
    wait_for(lambda: daemon.json("/api/v1/fills")["fills"], 30, "a fill")
    _, body = get(daemon, "/api/v1/fills")
    fill = json.loads(body)["fills"][0]
    assert fill["decision_id"] and fill["news_to_fill_s"] is not None
    assert fill["news_to_fill_s"] >= 0
    _, body = get(daemon, "/api/v1/orders")
    orders = json.loads(body)["orders"]
    assert fill["client_order_id"] in {o["client_order_id"] for o in orders}
    _, body = get(daemon, "/api/v1/positions")
    for position in json.loads(body)["positions"]:
        assert position["headlines"] and position["headlines"][0]["outcome"] == "order"
    _, body = get(daemon, "/api/v1/equity")
    equity = json.loads(body)
    assert len(equity["points"]) >= 2 and equity["max_drawdown"] <= 0


def test_a_bad_parameter_is_one_line_naming_it(daemon: Daemon) -> None:
    status, body = get(daemon, "/api/v1/decisions?limit=abc")
    assert status == 400 and json.loads(body) == {"error": "limit: 'abc' is not a whole number"}
    status, body = get(daemon, "/api/v1/decisions?before=yesterday")
    assert status == 400 and "before" in json.loads(body)["error"]
    assert get(daemon, "/api/v1/nothing")[0] == 404
    assert get(daemon, "/static/../config.toml")[0] == 404


def test_metrics_parse_with_prometheus_clients_own_parser(daemon: Daemon) -> None:
    status, body = get(daemon, "/metrics")
    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    news = {
        s.labels["feed"]: s.value
        for s in families["lorabot_news_items"].samples
        if s.name.endswith("_total")
    }
    assert news["test"] >= 3
    decided = [s for s in families["lorabot_decisions"].samples if s.name.endswith("_total")]
    assert any(s.labels["outcome"] == "order" and s.value >= 1 for s in decided)
    for name in (
        "lorabot_classify_latency_seconds",
        "lorabot_news_to_order_latency_seconds",
        "lorabot_equity",
        "lorabot_kill_switch",
        "lorabot_heartbeat_timestamp_seconds",
        "lorabot_heartbeat_age_seconds",
        "lorabot_position_notional",
        "lorabot_order_updates",
        "lorabot_signals",
    ):
        assert name in families, name
    count = [
        s for s in families["lorabot_classify_latency_seconds"].samples if s.name.endswith("_count")
    ]
    assert count[0].value >= 3
    assert families["lorabot_equity"].samples[0].value > 0


def test_the_kill_switch_needs_the_token(daemon: Daemon) -> None:
    path = kill_file(daemon)
    assert post(daemon, "/api/v1/kill")[0] == 401  # missing
    assert post(daemon, "/api/v1/kill", token="not-the-token")[0] == 401  # wrong
    assert post(daemon, "/api/v1/kill", token=SECRETS["LORABOT_API_TOKEN"][:-1])[0] == 401
    assert not path.exists()
    status, body = post(daemon, "/api/v1/kill", token=SECRETS["LORABOT_API_TOKEN"])  # right
    assert status == 200 and json.loads(body)["kill_switch"] is True
    assert path.exists()
    wait_for(lambda: daemon.json("/api/v1/status")["kill_switch"], 15, "the daemon halted")
    _, body = get(daemon, "/api/v1/log")
    events = [line["event"] for line in json.loads(body)["log"]]
    assert "kill switch on: flattening and halting" in events  # the log panel saw the warning
    assert post(daemon, "/api/v1/kill/off")[0] == 401
    status, _ = post(daemon, "/api/v1/kill/off", token=SECRETS["LORABOT_API_TOKEN"])
    assert status == 200 and not path.exists()
    wait_for(lambda: not daemon.json("/api/v1/status")["kill_switch"], 15, "trading again")
    status, _, _ = request(daemon.url + "/api/v1/status", method="POST")
    assert status == 405  # every other route is GET only


def test_the_page_and_its_assets_are_served_by_lorabot(daemon: Daemon) -> None:
    status, page = get(daemon, "/")
    assert status == 200 and b"/static/app.js" in page
    assert b"http://" not in page and b"https://" not in page  # no CDN
    for asset in ("app.js", "app.css"):
        status, body = get(daemon, f"/static/{asset}")
        assert (
            status == 200
            and b"https://" not in body
            and b"http://" not in body.replace(b"http://www.w3.org/2000/svg", b"")
        )
    status, body = get(daemon, "/api/v1/config")
    config = json.loads(body)
    assert status == 200 and config["api"]["listen"] == "127.0.0.1:0"
    assert get(daemon, "/api/v1/backtests")[0] == 200


def test_no_configured_secret_in_any_answer(daemon: Daemon) -> None:
    """Greps one answer of every route (GET, and the kill switch's refusals), plus whatever the
    module's other tests got back on this worker (under xdist they may run elsewhere)."""
    routes = ["/", "/health", "/metrics", "/static/app.js", "/static/app.css"] + [
        f"/api/v1/{name}"
        for name in ("status", "positions", "orders", "fills", "decisions", "equity", "config")
    ]
    before = len(ANSWERS)
    for path in [*routes, "/api/v1/backtests", "/api/v1/log", "/api/v1/decisions?limit=500"]:
        assert get(daemon, path)[0] == 200, path
    assert post(daemon, "/api/v1/kill")[0] == 401
    assert post(daemon, "/api/v1/kill", token="wrong")[0] == 401
    assert len(ANSWERS) - before == 2 * 15 + 2  # each GET's body and headers, each POST's
    everything = b"\n".join(ANSWERS)
    for name, secret in SECRETS.items():
        assert secret.encode() not in everything, f"{name} leaked"
    log = Path(daemon.log).read_bytes()
    for name, secret in SECRETS.items():
        assert secret.encode() not in log, f"{name} in the log"
