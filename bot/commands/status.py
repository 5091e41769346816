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


def _account_portfolio(store: Any, state: Any, account: str) -> tuple[Any, Any]:
    """(portfolio, the last reconciliation or None). A live account's truth is what the venue
    said at its last reconciliation plus the fills since; the stored fills alone miss every
    change made on the venue (and a restart's adoption of it)."""
    from bot.portfolio import Portfolio

    portfolio = Portfolio.from_fills(state.initial_cash, state.fills)
    reconciled = store.last_reconciliation(account)
    if reconciled is None:
        return portfolio, None
    cash = portfolio.cash
    venue = Portfolio(state.initial_cash)
    for symbol, (qty, avg_price) in reconciled.positions.items():
        position = venue.position(symbol)
        position.qty, position.avg_price = qty, avg_price
    venue.cash = reconciled.cash if reconciled.cash is not None else cash
    for fill in state.fills:
        if fill.ts > reconciled.ts:
            venue.apply_fill(fill)
    venue.fees = portfolio.fees
    return venue, reconciled


def _account_summary(store: Any, account: str, signals: int, decisions: int) -> dict[str, Any]:
    state = store.load_account(account)
    if state is None:
        raise UserError(f"no account {account!r} in the store (known: {store.accounts()})")
    portfolio, reconciled = _account_portfolio(store, state, account)
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
        "source": "venue" if reconciled is not None else "fills",
        "reconciled_at": iso(reconciled.ts) if reconciled is not None else None,
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
        "decisions": [_decision(d) for d in store.decisions(account, limit=decisions)]
        if decisions
        else [],
    }


def _decision(d: Any) -> dict[str, Any]:
    return {
        "id": d.id,
        "time": iso(d.ts),
        "trigger": d.trigger,
        "symbol": d.symbol or "*",
        "news_id": d.news_id,
        "source": d.source,
        "label": d.label.word if d.label is not None else "",
        "confidence": round(d.confidence, 3),
        "composite": (
            f"{d.composite_label.word} {d.composite_confidence:.2f}"
            if d.composite_label is not None
            else ""
        ),
        "target_before": None if d.target_before is None else str(d.target_before),
        "target_after": None if d.target_after is None else str(d.target_after),
        "risk": d.risk,
        "outcome": d.outcome.value,
        "order_id": d.order_id,
        "reason": d.reason,
    }


@click.command()
@click.option("--account", help="Which account (default: every account in the store).")
@click.option(
    "--signals", "n_signals", default=10, show_default=True, help="How many recent signals to show."
)
@click.option(
    "--decisions",
    "n_decisions",
    default=0,
    type=click.IntRange(min=0),
    help="Also list the last N decision records: what each headline and re-vote made of the "
    "account, and the order it caused or why none.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
@config_option
@click.pass_context
def status(
    ctx: click.Context,
    account: str | None,
    n_signals: int,
    n_decisions: int,
    as_json: bool,
    config_path: Path | None,
) -> None:
    """Positions, cash, equity, open orders and the last signals, from the store."""
    settings = settings_for(ctx, config_path)
    from bot.store import Store

    store = Store(settings.store_url)
    accounts = (
        [account] if account else [a for a in store.accounts() if not a.startswith("backtest-")]
    )
    summaries = [_account_summary(store, name, n_signals, n_decisions) for name in accounts]
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
        if summary["reconciled_at"]:
            console.print(
                f"  positions and cash as the venue reported them at "
                f"{summary['reconciled_at']}, plus the fills since"
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
        if summary["decisions"]:
            table = Table(
                "time",
                "symbol",
                "trigger",
                "label",
                "composite",
                "target",
                "outcome",
                "order",
                "reason",
                title="last decisions",
            )
            for d in summary["decisions"]:
                table.add_row(
                    d["time"],
                    d["symbol"],
                    d["trigger"],
                    d["label"],
                    d["composite"],
                    f"{d['target_before'] or '-'} -> {d['target_after'] or '-'}",
                    d["outcome"],
                    d["order_id"] or "-",
                    d["reason"],
                )
            console.print(table)


@click.command()
@click.option("--off", is_flag=True, help="Remove the kill switch: the daemon trades again.")
@click.option("--reason", default="manual", show_default=True, help="Recorded in the file.")
@config_option
@click.pass_context
def kill(ctx: click.Context, off: bool, reason: str, config_path: Path | None) -> None:
    """Turn the kill switch on: a running daemon flattens every position and stops trading.

    It stays halted (and a restarted daemon starts halted) until `lorabot kill --off`.
    """
    from bot.console.kill import set_kill_switch

    settings = settings_for(ctx, config_path)
    path = settings.kill_switch_path
    existed = set_kill_switch(path, not off, LiveClock().now(), reason)
    if off:
        click.echo(f"kill switch off ({path})" if existed else f"kill switch was not on ({path})")
        return
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
    from strategies.loader import StrategyError, describe_parameters

    try:
        click.echo("\n".join(describe_parameters(settings.strategy)))
    except StrategyError as error:
        raise UserError(str(error)) from None
