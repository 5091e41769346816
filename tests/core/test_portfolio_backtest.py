"""Portfolio backtests (issue 15): several symbols' bars through one engine and one account,
`metrics.json` per symbol under `symbols.<SYMBOL>` beside the portfolio's own figures, and the
equal-weight basket as buy-and-hold; the price charts drawn from the run folder."""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.backtest import LuckOptions, run_backtest
from bot.cli import main
from bot.portfolio_figures import cash_flow, exact_pnl
from bot.recording import BacktestResult, TradeRow
from bot.report import write_report
from tests.core.luck_scenarios import lexicon_settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)
HOURS = 96


def write_market(folder: Path) -> tuple[Path, Path, Path]:
    """BTC rising from 40,000 and ETH falling from 2,500 over 1h bars, with news every 12h:
    bullish on Bitcoin, bearish on Ethereum, and a market-wide bullish item now and then."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, start, step in (("btc", 40_000.0, 1.002), ("eth", 2_500.0, 0.998)):
        lines = ["timestamp,open,high,low,close,volume"]
        price = start
        for i in range(HOURS):
            close = price * (step if i % 5 else 1 / step)
            ts = (T0 + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S")
            high, low = max(price, close) * 1.001, min(price, close) * 0.999
            lines.append(f"{ts},{price:.2f},{high:.2f},{low:.2f},{close:.2f},10")
            price = close
        path = folder / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    items = []
    for k in range(2, HOURS - 12, 12):  # from the third hour: a price is known
        at = T0 + timedelta(hours=k, seconds=30)
        for n, title in enumerate(
            (
                "Bitcoin surges in a strong rally",
                "Ethereum plunges in a crash",
                *(["Crypto markets surge in a strong rally"] if k % 36 == 14 else []),
            )
        ):
            stamp = (at + timedelta(seconds=n)).isoformat().replace("+00:00", "Z")
            items.append({"id": f"n{k}-{n}", "source": "desk", "title": title, "received": stamp})
    news = folder / "news.jsonl"
    news.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return paths[0], paths[1], news


@pytest.fixture(scope="module")
def portfolio_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[BacktestResult, Path]:
    tmp = tmp_path_factory.mktemp("portfolio")
    btc, eth, news = write_market(tmp / "in")
    settings = lexicon_settings(tmp, strategy={"reevaluate_interval": 3600.0})
    result = run_backtest(
        settings,
        bars={"BTCUSDT": btc, "ETHUSDT": eth},
        news_path=news,
        out_dir=tmp / "out",
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp / 'ledger.sqlite'}", lag=False),
    )
    write_report(result)
    return result, tmp


def assert_self_contained(page: str) -> None:
    """No script is fetched (plotly's is inlined) and, outside the inlined scripts' code, no
    element refers to an http(s) address."""
    assert re.findall(r"<script[^>]*>", page) and not re.search(r"<script[^>]*\bsrc=", page)
    markup = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    assert not re.search(r"""\s(src|href)=["']?https?:""", markup)


def read_trades(path: Path) -> list[TradeRow]:
    with path.open(encoding="utf-8") as handle:
        return [
            TradeRow(
                ts=datetime.fromisoformat(r["timestamp"]),
                symbol=r["symbol"],
                side=r["side"],
                qty=Decimal(r["qty"]),
                price=Decimal(r["price"]),
                fee=Decimal(r["fee"]),
                liquidity=r["liquidity"],
                realised_pnl=Decimal(r["realised_pnl"]),
                position=Decimal(r["position"]),
                avg_entry=Decimal(r["avg_entry"]),
                reason=r["reason"],
            )
            for r in csv.DictReader(handle)
        ]


@pytest.mark.slow
def test_one_account_trades_both_symbols(portfolio_run: tuple[BacktestResult, Path]) -> None:
    result, tmp = portfolio_run
    trades = read_trades(tmp / "out" / "trades.csv")
    sides = {(t.symbol, t.side) for t in trades}
    assert ("BTCUSDT", "buy") in sides and ("ETHUSDT", "sell") in sides
    assert {t.symbol for t in trades} == {"BTCUSDT", "ETHUSDT"}
    portfolio = result.parts.engine.portfolio
    # the cash is the starting cash plus every fill's cash flow, to the last decimal
    initial = result.settings.engine.initial_cash
    assert initial + sum((cash_flow(t) for t in trades), Decimal(0)) == portfolio.cash
    # each symbol's PnL (its cash flows and its open position at its mark) adds up to the account
    pnl = sum((exact_pnl(trades, portfolio, s) for s in ("BTCUSDT", "ETHUSDT")), Decimal(0))
    assert pnl == portfolio.equity - initial
    assert pnl != 0


def test_one_account_with_funding_on_both_symbols_adds_up(tmp_path: Path) -> None:
    """The quick one (no report): funding charged on each perpetual's own position, and still
    cash = start + every row's cash flow, sum of the symbols' PnL = the account's, exactly."""
    btc, eth, news = write_market(tmp_path / "in")
    settings = lexicon_settings(
        tmp_path, strategy={"reevaluate_interval": 3600.0}, paper={"funding_rate": "0.0001"}
    )
    result = run_backtest(
        settings,
        bars={"BTCUSDT": btc, "ETHUSDT": eth},
        news_path=news,
        out_dir=tmp_path / "out",
        progress=False,
        luck=LuckOptions(ledger_url=f"sqlite:///{tmp_path / 'l.sqlite'}", lag=False),
    )
    trades, portfolio = result.recording.trades, result.parts.engine.portfolio
    initial = settings.engine.initial_cash
    funding = {t.symbol for t in trades if t.reason == "funding"}
    assert funding == {"BTCUSDT", "ETHUSDT"}
    assert initial + sum((cash_flow(t) for t in trades), Decimal(0)) == portfolio.cash
    by_symbol = {s: exact_pnl(trades, portfolio, s) for s in ("BTCUSDT", "ETHUSDT")}
    assert sum(by_symbol.values(), Decimal(0)) == portfolio.equity - initial
    per = result.metrics["symbols"]
    assert isinstance(per, dict)
    paid = sum(per[s]["funding_paid"] for s in per)
    assert paid == pytest.approx(result.metrics["funding_paid"])
    assert per["BTCUSDT"]["funding_paid"] > 0 > per["ETHUSDT"]["funding_paid"]  # long pays


@pytest.mark.slow
def test_metrics_hold_the_portfolio_and_each_symbol(
    portfolio_run: tuple[BacktestResult, Path],
) -> None:
    result, tmp = portfolio_run
    metrics = json.loads((tmp / "out" / "metrics.json").read_text())
    initial = float(result.settings.engine.initial_cash)
    per = metrics["symbols"]
    assert list(per) == ["BTCUSDT", "ETHUSDT"]
    total = metrics["final_equity"] - initial
    assert sum(s["pnl"] for s in per.values()) == pytest.approx(total, abs=1e-6)
    assert sum(s["return_contribution"] for s in per.values()) == pytest.approx(
        metrics["total_return"], abs=1e-9
    )
    assert sum(s["n_trades"] for s in per.values()) == metrics["n_trades"]
    assert sum(s["fees_paid"] for s in per.values()) == pytest.approx(metrics["fees_paid"])
    assert all(s["n_trades"] > 0 and s["n_bars"] == HOURS for s in per.values())
    # the long in a rising BTC made money, the short in a falling ETH too
    assert per["BTCUSDT"]["pnl"] > 0 and per["ETHUSDT"]["pnl"] > 0
    # buy-and-hold is the equal-weight basket: the mean of the two symbols' own returns
    basket = (per["BTCUSDT"]["buy_and_hold_return"] + per["ETHUSDT"]["buy_and_hold_return"]) / 2
    assert metrics["buy_and_hold_return"] == pytest.approx(basket, abs=1e-9)
    assert per["BTCUSDT"]["buy_and_hold_return"] > 0 > per["ETHUSDT"]["buy_and_hold_return"]
    with (tmp / "out" / "equity.csv").open(encoding="utf-8") as handle:
        last = list(csv.DictReader(handle))[-1]
    assert float(last["buy_and_hold"]) == pytest.approx(initial * (1 + basket), rel=1e-9)


@pytest.mark.slow
def test_the_equity_is_marked_on_every_symbol(portfolio_run: tuple[BacktestResult, Path]) -> None:
    """A bar where only ETH is held records the account's marked equity, not its cash."""
    result, _ = portfolio_run
    recording = result.recording
    assert recording.equity[-1] == pytest.approx(float(result.parts.engine.portfolio.equity))
    assert sum(recording.exposed) > 0


@pytest.mark.slow
def test_price_charts_and_the_interactive_report(
    portfolio_run: tuple[BacktestResult, Path],
) -> None:
    _, tmp = portfolio_run
    out = tmp / "out"
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert (out / f"price_{symbol}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with (out / "headlines.csv").open(encoding="utf-8") as handle:
        moved = list(csv.DictReader(handle))
    assert {r["symbol"] for r in moved} == {"BTCUSDT", "ETHUSDT"}
    assert "Ethereum plunges in a crash" in {r["title"] for r in moved if r["symbol"] == "ETHUSDT"}
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "Plotly.newPlot" in page and "Per symbol" in page
    assert "Ethereum plunges in a crash" in page  # a headline in the interactive chart's hover
    assert_self_contained(page)


@pytest.mark.slow
def test_plot_redraws_a_window_from_the_run_folder(
    portfolio_run: tuple[BacktestResult, Path],
) -> None:
    from bot import chart_data

    _, tmp = portfolio_run
    start, end = T0 + timedelta(hours=24), T0 + timedelta(hours=48)
    data = chart_data.load(tmp / "out", start, end)
    assert data.symbols == ["BTCUSDT", "ETHUSDT"]
    for series in (*data.prices.values(), *data.composite.values()):
        assert series.times and all(start <= t <= end for t in series.times)
    assert data.trades and all(start <= t.ts <= end for t in data.trades)
    assert len(data.prices["BTCUSDT"].times) == 25
    window = tmp / "window"
    try:
        main(["plot", str(tmp / "out"), "--from", start.isoformat(), "--to", end.isoformat(),
              "--out", str(window)])  # fmt: skip
    except SystemExit as done:
        assert done.code in (0, None)
    for name in ("price_BTCUSDT.png", "price_ETHUSDT.png", "trades.html"):
        assert (window / name).stat().st_size > 0, name
    assert (window / "price_BTCUSDT.png").read_bytes() != (
        tmp / "out" / "price_BTCUSDT.png"
    ).read_bytes()
    assert_self_contained((window / "trades.html").read_text(encoding="utf-8"))


def test_plot_names_what_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "run").mkdir()
    with pytest.raises(SystemExit) as done:
        main(["plot", str(tmp_path / "run")])
    assert done.value.code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "prices.csv: missing" in err[0]


@pytest.mark.slow
def test_the_command_line_takes_symbol_file_pairs(tmp_path: Path) -> None:
    btc, eth, news = write_market(tmp_path / "in")
    config = tmp_path / "config.toml"
    config.write_text(
        f'[model]\nbackend = "lexicon"\n[store]\ndata_dir = "{tmp_path / "d"}"\n'
        f'cache_dir = "{tmp_path / "c"}"\n',
        encoding="utf-8",
    )
    out = tmp_path / "out"
    args = ["--config", str(config), "backtest", "--bars", f"BTCUSDT={btc}", "--bars",
            f"ETHUSDT={eth}", "--news", str(news), "--out", str(out), "--no-lag",
            "--no-progress"]  # fmt: skip
    try:
        main(args)
    except SystemExit as done:
        assert done.code in (0, None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["symbols"]) == {"BTCUSDT", "ETHUSDT"}
    with pytest.raises(SystemExit) as refused:
        main(["--config", str(config), "backtest", "--bars", f"DOGEUSDT={btc}", "--out",
              str(tmp_path / "x")])  # fmt: skip
    assert refused.value.code != 0
