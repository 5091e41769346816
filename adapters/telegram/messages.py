"""The texts the Telegram bot sends, from the console's snapshot and decision records (pure
functions: what a message says is tested without a network)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from bot.events import Fill, iso


def status_text(snap: dict[str, Any]) -> str:
    if not snap:
        return "lorabot: starting"
    kill = "ON" if snap.get("kill_switch") else "off"
    halted = snap["risk"]["reason"] if snap["risk"]["halted"] else "trading"
    return (
        f"lorabot {snap['mode']} · {snap['account']}\n"
        f"equity {snap['equity']} (cash {snap['cash']})\n"
        f"model {snap['model']['id']} · {snap['decisions']} decisions · {snap['fills']} fills\n"
        f"kill switch {kill} · {halted} · up {round(snap['uptime_s'])} s"
    )


def positions_text(snap: dict[str, Any]) -> str:
    rows = snap.get("positions", [])
    if not rows:
        return "no open positions"
    return "\n".join(
        f"{p['symbol']} {p['qty']} @ {p['avg_price']} (mark {p['mark'] or '-'}, "
        f"uPnL {p['unrealised_pnl']})"
        for p in rows
    )


def profit_text(snap: dict[str, Any]) -> str:
    if not snap:
        return "lorabot: starting"
    change = Decimal(snap["equity"]) - Decimal(snap["initial_cash"])
    return (
        f"equity {snap['equity']} ({change:+} since {snap['initial_cash']})\n"
        f"realised {snap['realised_pnl']} · unrealised {snap['unrealised_pnl']} · "
        f"fees {snap['fees']}"
    )


def decisions_text(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no decisions yet"
    lines = []
    for d in rows:
        what = d.get("headline") or (d["news_id"] if d["trigger"] == "news" else d["trigger"])
        lines.append(f"{d['ts'][11:19]} {d['symbol'] or '*'} {d['outcome']}: {what[:80]}")
    return "\n".join(lines)


def fill_text(fill: Fill) -> str:
    return f"fill {fill.side.value} {fill.qty} {fill.symbol} @ {fill.price} (fee {fill.fee})"


def daily_summary_text(snap: dict[str, Any], now: datetime) -> str:
    return f"daily summary {iso(now)[:10]}\n{profit_text(snap)}\n{positions_text(snap)}"


def seconds_until(at: str, now: datetime) -> float:
    """Seconds from `now` to the next `HH:MM` (UTC); a time just passed is tomorrow's."""
    hours, minutes = (int(part) for part in at.split(":"))
    target = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    return (target - now).total_seconds()
