"""`lorabot status`, `lorabot kill` and `lorabot config`: look at and steer a daemon from outside.

They talk to the daemon only through the store and the kill-switch file, so they work the same
whether the daemon is running, stopped, or on another machine sharing the database.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from bot.cli import config_option, settings_for
from bot.clock import LiveClock
from bot.config import Secrets, dump_toml
from bot.errors import UserError
from bot.events import iso


def _account_summary(store: Any, account: str, signals: int) -> dict[str, Any]:
    from bot.portfolio import Portfolio

    state = store.load_account(account)
    if state is None:
        raise UserError(f"no account {account!r} in the store (known: {store.accounts()})")
    portfolio = Portfolio.from_fills(state.initial_cash, state.fills)
    last = store.equity(account, limit=1)
    positions = []
    for symbol, position in portfolio.positions.items():
        if position.qty:
            positions.append(
                {
                    "symbol": symbol,
                    "qty": str(position.qty),
                    "avg_price": str(position.avg_price.quantize(Decimal("0.01"))),
                    "realised_pnl": str(position.realised_pnl.quantize(Decimal("0.01"))),
                }
            )
    return {
        "account": account,
        "initial_cash": str(state.initial_cash),
        "cash": str(portfolio.cash.quantize(Decimal("0.01"))),
        "equity": str(last[0].equity.quantize(Decimal("0.01"))) if last else None,
        "equity_at": iso(last[0].ts) if last else None,
        "fees": str(portfolio.fees.quantize(Decimal("0.01"))),
        "fills": len(state.fills),
        "positions": positions,
        "open_orders": [
            {
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": o.side.value,
                "qty": str(o.qty),
                "status": o.status.value,
                "filled": str(o.filled_qty),
            }
            for o in state.open_orders
        ],
        "signals": [
            {
                "time": iso(s.ts),
                "symbol": s.symbol or "*",
                "label": s.label.word,
                "confidence": round(s.confidence, 3),
                "source": s.source,
                "news_id": s.news_id,
            }
            for s in store.signals(account, limit=signals)
        ],
    }


@click.command()
@click.option("--account", help="Which account (default: every account in the store).")
@click.option(
    "--signals", "n_signals", default=10, show_default=True, help="How many recent signals to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@config_option
@click.pass_context
def status(
    ctx: click.Context, account: str | None, n_signals: int, as_json: bool, config_path: Path | None
) -> None:
    """Positions, cash, equity, open orders and the last signals, from the store."""
    settings = settings_for(ctx, config_path)
    from bot.store import Store

    store = Store(settings.store_url)
    accounts = (
        [account] if account else [a for a in store.accounts() if not a.startswith("backtest-")]
    )
    summaries = [_account_summary(store, name, n_signals) for name in accounts]
    kill = settings.kill_switch_path.exists()
    if as_json:
        click.echo(json.dumps({"kill_switch": kill, "accounts": summaries}, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=True)
    if not summaries:
        console.print(f"no accounts in {settings.store_url} yet: start `lorabot run`")
    if kill:
        console.print(f"[bold red]kill switch is ON[/] ({settings.kill_switch_path})")
    for summary in summaries:
        console.print(
            f"[bold]{summary['account']}[/]  cash {summary['cash']}  equity "
            f"{summary['equity'] or '-'} (at {summary['equity_at'] or '-'})  fees "
            f"{summary['fees']}  fills {summary['fills']}"
        )
        positions = Table("symbol", "qty", "avg price", "realised PnL", title="positions")
        for p in summary["positions"]:
            positions.add_row(p["symbol"], p["qty"], p["avg_price"], p["realised_pnl"])
        console.print(positions)
        if summary["open_orders"]:
            orders = Table(
                "order", "symbol", "side", "qty", "filled", "status", title="open orders"
            )
            for o in summary["open_orders"]:
                orders.add_row(
                    o["client_order_id"], o["symbol"], o["side"], o["qty"], o["filled"], o["status"]
                )
            console.print(orders)
        signals = Table("time", "symbol", "label", "conf", "source", title="last signals")
        for s in summary["signals"]:
            signals.add_row(
                s["time"], s["symbol"], s["label"], f"{s['confidence']:.3f}", s["source"]
            )
        console.print(signals)


@click.command()
@click.option("--off", is_flag=True, help="Remove the kill switch: the daemon trades again.")
@click.option("--reason", default="manual", show_default=True, help="Recorded in the file.")
@config_option
@click.pass_context
def kill(ctx: click.Context, off: bool, reason: str, config_path: Path | None) -> None:
    """Turn the kill switch on: a running daemon flattens every position and stops trading.

    It stays halted (and a restarted daemon starts halted) until `lorabot kill --off`.
    """
    settings = settings_for(ctx, config_path)
    path = settings.kill_switch_path
    if off:
        existed = path.exists()
        path.unlink(missing_ok=True)
        click.echo(f"kill switch off ({path})" if existed else f"kill switch was not on ({path})")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{iso(LiveClock().now())} {reason}\n", encoding="utf-8")
    click.echo(f"kill switch on ({path}): the daemon flattens and halts")


@click.command(name="config")
@config_option
@click.pass_context
def config_command(ctx: click.Context, config_path: Path | None) -> None:
    """Validate the config and print it with every default filled in (secrets never shown)."""
    settings = settings_for(ctx, config_path)
    click.echo(dump_toml(settings.to_toml_dict()), nl=False)
    secrets = Secrets.from_env(settings.bybit)
    click.echo(
        f"# {settings.bybit.api_key_env}: {'set' if secrets.api_key else 'not set'}; "
        f"{settings.bybit.api_secret_env}: {'set' if secrets.api_secret else 'not set'}"
    )
    click.echo(f"# data dir: {settings.data_dir}; cache dir: {settings.cache_dir}")
