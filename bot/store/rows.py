"""Row mapping: lorabot events <-> the dicts the store writes and the rows it reads back.

Kept apart from the SQL so that a column added to a table and to its event is one edit here, and
so that the journal and the news log never disagree on how a record looks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from bot.events import (
    Decision,
    EquitySnapshot,
    Fill,
    Label,
    Liquidity,
    NewsItem,
    OrderType,
    Outcome,
    PositionSnapshot,
    Side,
    Signal,
    TimeInForce,
)
from bot.orders import Order, OrderStatus


def news_row(item: NewsItem, raw: dict[str, Any] | None, title_key: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "source": item.source,
        "title": item.title,
        "body": item.body,
        "link": item.link,
        "published": item.published,
        "received": item.received,
        "symbols": ",".join(item.symbols),
        "stale": item.stale,
        "undated": item.undated,
        "title_key": title_key,
        "raw": json.dumps(raw, default=str, ensure_ascii=False) if raw else None,
        "signal_status": "pending",
    }


def news_from_row(row: Any) -> NewsItem:
    return NewsItem(
        id=row.id,
        source=row.source,
        title=row.title,
        body=row.body,
        link=row.link,
        published=row.published,
        received=row.received,
        symbols=tuple(s for s in row.symbols.split(",") if s),
        stale=row.stale,
        undated=row.undated,
    )


def signal_row(signal: Signal, account: str, run_id: str) -> dict[str, Any]:
    return {
        "account": account,
        "run_id": run_id,
        "ts": signal.ts,
        "news_id": signal.news_id,
        "symbol_key": signal.symbol or "",
        "label": signal.label.word,
        "confidence": signal.confidence,
        "p_bearish": signal.probs[0],
        "p_neutral": signal.probs[1],
        "p_bullish": signal.probs[2],
        "model_id": signal.model_id,
        "source": signal.source,
        "weight": signal.weight,
        "stale": signal.stale,
        "published": signal.published,
        "received": signal.received,
    }


def signal_from_row(row: Any) -> Signal:
    return Signal(
        ts=row.ts,
        symbol=row.symbol_key or None,
        label=Label.parse(row.label),
        confidence=row.confidence,
        probs=(row.p_bearish, row.p_neutral, row.p_bullish),
        model_id=row.model_id,
        source=row.source,
        news_id=row.news_id,
        published=row.published,
        received=row.received,
        weight=row.weight,
        stale=row.stale,
    )


def order_row(order: Order, account: str, run_id: str) -> dict[str, Any]:
    return {
        "client_order_id": order.client_order_id,
        "account": account,
        "run_id": run_id,
        "symbol": order.symbol,
        "side": order.side.value,
        "order_type": order.order_type.value,
        "qty": order.qty,
        "price": order.price,
        "time_in_force": order.time_in_force.value,
        "reduce_only": order.reduce_only,
        "status": order.status.value,
        "venue_order_id": order.venue_order_id,
        "filled_qty": order.filled_qty,
        "avg_price": order.avg_price,
        "fees": order.fees,
        "reason": order.reason[:500],
        "created": order.created,
        "updated": order.updated,
        "decision_id": order.decision_id,
    }


def order_from_row(row: Any) -> Order:
    return Order(
        client_order_id=row.client_order_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        created=row.created,
        order_type=OrderType(row.order_type),
        price=row.price,
        time_in_force=TimeInForce(row.time_in_force),
        reduce_only=row.reduce_only,
        status=OrderStatus(row.status),
        venue_order_id=row.venue_order_id,
        filled_qty=row.filled_qty,
        avg_price=row.avg_price,
        fees=row.fees,
        reason=row.reason,
        updated=row.updated,
        decision_id=row.decision_id,
    )


def fill_row(fill: Fill, account: str, run_id: str) -> dict[str, Any]:
    return {
        "account": account,
        "run_id": run_id,
        "exec_id": fill.exec_id,
        "client_order_id": fill.client_order_id,
        "ts": fill.ts,
        "symbol": fill.symbol,
        "side": fill.side.value,
        "qty": fill.qty,
        "price": fill.price,
        "fee": fill.fee,
        "fee_currency": fill.fee_currency,
        "liquidity": fill.liquidity.value,
    }


def fill_from_row(row: Any) -> Fill:
    return Fill(
        ts=row.ts,
        client_order_id=row.client_order_id,
        exec_id=row.exec_id,
        symbol=row.symbol,
        side=Side(row.side),
        qty=row.qty,
        price=row.price,
        fee=row.fee,
        liquidity=Liquidity(row.liquidity),
        fee_currency=row.fee_currency,
    )


def equity_row(
    snapshot: EquitySnapshot, account: str, run_id: str, source: str = "fills"
) -> dict[str, Any]:
    return {
        "account": account,
        "run_id": run_id,
        "source": source,
        "ts": snapshot.ts,
        "cash": snapshot.cash,
        "equity": snapshot.equity,
        "realised_pnl": snapshot.realised_pnl,
        "unrealised_pnl": snapshot.unrealised_pnl,
        "fees": snapshot.fees,
    }


def equity_from_row(row: Any) -> EquitySnapshot:
    return EquitySnapshot(
        ts=row.ts,
        cash=row.cash,
        equity=row.equity,
        realised_pnl=row.realised_pnl,
        unrealised_pnl=row.unrealised_pnl,
        fees=row.fees,
    )


def position_row(
    snapshot: PositionSnapshot, account: str, run_id: str, source: str = "fills"
) -> dict[str, Any]:
    return {
        "account": account,
        "run_id": run_id,
        "source": source,
        "ts": snapshot.ts,
        "symbol": snapshot.symbol,
        "qty": snapshot.qty,
        "avg_price": snapshot.avg_price,
        "realised_pnl": snapshot.realised_pnl,
        "unrealised_pnl": snapshot.unrealised_pnl,
        "mark": snapshot.mark,
    }


def position_from_row(row: Any) -> PositionSnapshot:
    return PositionSnapshot(
        ts=row.ts,
        symbol=row.symbol,
        qty=row.qty,
        avg_price=row.avg_price,
        realised_pnl=row.realised_pnl,
        unrealised_pnl=row.unrealised_pnl,
        mark=row.mark,
    )


def venue_positions_text(positions: Mapping[str, tuple[Decimal, Decimal]]) -> str:
    """Positions as JSON with exact decimal text (never floats), sorted for stable rows."""
    return json.dumps({s: [str(q), str(p)] for s, (q, p) in sorted(positions.items())})


def venue_positions(text: str) -> dict[str, tuple[Decimal, Decimal]]:
    return {s: (Decimal(q), Decimal(p)) for s, (q, p) in json.loads(text).items()}


def decision_row(decision: Decision, account: str, run_id: str) -> dict[str, Any]:
    return {
        "id": decision.id,
        "account": account,
        "run_id": run_id,
        "ts": decision.ts,
        "trigger": decision.trigger,
        "symbol": decision.symbol or "",
        "outcome": decision.outcome.value,
        "reason": decision.reason[:500],
        "news_id": decision.news_id,
        "received": decision.received,
        "label": decision.label.word if decision.label is not None else "",
        "confidence": decision.confidence,
        "composite_label": (
            decision.composite_label.word if decision.composite_label is not None else ""
        ),
        "composite_confidence": decision.composite_confidence,
        "target_before": decision.target_before,
        "target_after": decision.target_after,
        "risk": decision.risk[:500],
        "order_id": decision.order_id,
        "source": decision.source,
        "model_id": decision.model_id,
    }


def decision_from_row(row: Any) -> Decision:
    return Decision(
        id=row.id,
        ts=row.ts,
        trigger=row.trigger,
        symbol=row.symbol or None,
        outcome=Outcome(row.outcome),
        reason=row.reason,
        news_id=row.news_id,
        received=row.received,
        label=Label.parse(row.label) if row.label else None,
        confidence=row.confidence,
        composite_label=Label.parse(row.composite_label) if row.composite_label else None,
        composite_confidence=row.composite_confidence,
        target_before=row.target_before,
        target_after=row.target_after,
        risk=row.risk,
        order_id=row.order_id,
        source=row.source,
        model_id=row.model_id,
    )
