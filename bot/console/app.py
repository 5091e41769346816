"""The console's aiohttp application: pages, the JSON API, /health, /metrics, live updates.

Every route is a GET except the kill switch. Answers are built from the tick's snapshot
(`state.py`) and the read-only queries (`queries.py`); a bad query parameter is a 400 with one
line naming it. Live updates are server-sent events: the page is told when a new snapshot (or
a new decision) exists and fetches what changed, so it never reloads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.clock import Clock
from bot.console.auth import bearer_ok
from bot.console.equity import equity_summary
from bot.console.kill import set_kill_switch
from bot.console.metrics import ConsoleMetrics
from bot.console.queries import ConsoleQueries
from bot.console.state import ConsoleState

STATIC = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
SSE_POLL = 0.25  # seconds between checks for a new snapshot (the tick is 1 s)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ConsoleContext:
    state: ConsoleState
    queries: ConsoleQueries
    metrics: ConsoleMetrics
    clock: Clock
    config: dict[str, Any]  # the settings, secrets redacted
    kill_path: Path
    backtests_dir: Path
    token: str | None
    token_for_reads: bool  # a non-loopback bind: every request but /health needs the token


class BadParameter(Exception):
    pass


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=json.dumps(data, default=str), status=status, content_type="application/json"
    )


def _int(request: web.Request, name: str, default: int, low: int = 0) -> int:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(f"{name}: {raw[:40]!r} is not a whole number") from None
    if value < low:
        raise BadParameter(f"{name}: must be at least {low} (got {value})")
    return value


def _cursor(raw: str | None) -> tuple[datetime, str] | None:
    """`before=<ISO time>|<decision id>`: the last row of the page before."""
    if not raw:
        return None
    ts, sep, last_id = raw.partition("|")
    try:
        when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        when = None
    if not sep or when is None or when.tzinfo is None:
        raise BadParameter(f"before: {raw[:60]!r} is not '<ISO time with zone>|<decision id>'")
    return when, last_id


def build_app(ctx: ConsoleContext) -> web.Application:
    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        open_path = request.path == "/health"
        if (
            ctx.token_for_reads
            and not open_path
            and not bearer_ok(request.headers.get("Authorization"), ctx.token)
        ):
            return _json({"error": "this console needs its token (Bearer)"}, 401)
        try:
            response = await handler(request)
        except BadParameter as error:
            return _json({"error": str(error)}, 400)
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    app = web.Application(middlewares=[guard])
    now = ctx.clock.now

    async def index(_: web.Request) -> web.StreamResponse:
        return _static_file("index.html")

    async def static(request: web.Request) -> web.StreamResponse:
        return _static_file(request.match_info["name"])

    async def health(_: web.Request) -> web.StreamResponse:
        age = ctx.state.heartbeat_age(now())
        ok = ctx.state.healthy(now())
        body = {
            "status": "ok" if ok else "stale",
            "heartbeat_age_s": None if age is None else round(age, 3),
            "stale_after_s": ctx.state.stale_after,
        }
        return _json(body, 200 if ok else 503)

    async def metrics(_: web.Request) -> web.StreamResponse:
        age = ctx.state.heartbeat_age(now())
        ctx.metrics.heartbeat_age.set(-1 if age is None else age)
        return web.Response(
            body=ctx.metrics.render(), headers={"Content-Type": "text/plain; version=0.0.4"}
        )

    async def status(_: web.Request) -> web.StreamResponse:
        version, snap = ctx.state.current()
        age = ctx.state.heartbeat_age(now())
        return _json(
            {
                **snap,
                "version": version,
                "heartbeat_age_s": None if age is None else round(age, 3),
                "healthy": ctx.state.healthy(now()),
                "kill_switch_file": ctx.kill_path.exists(),
                "last_reconciliation": ctx.queries.last_reconciliation(),
            }
        )

    async def positions(_request: web.Request) -> web.StreamResponse:
        _, snap = ctx.state.current()
        rows = [
            {**p, "headlines": ctx.queries.decisions_for_orders(p["symbol"])}
            for p in snap.get("positions", [])
        ]
        return _json({"positions": rows})

    async def orders(request: web.Request) -> web.StreamResponse:
        limit, offset = _int(request, "limit", 100, 1), _int(request, "offset", 0)
        snap = ctx.state.current()[1]
        return _json(
            {"open": snap.get("open_orders", []), "orders": ctx.queries.orders(limit, offset)}
        )

    async def fills(request: web.Request) -> web.StreamResponse:
        limit, offset = _int(request, "limit", 100, 1), _int(request, "offset", 0)
        return _json({"fills": ctx.queries.fills(limit, offset)})

    async def decisions(request: web.Request) -> web.StreamResponse:
        q = request.query
        rows = ctx.queries.decisions(
            _int(request, "limit", 50, 1),
            before=_cursor(q.get("before")),
            outcome=q.get("outcome", ""),
            source=q.get("source", ""),
        )
        last = rows[-1] if rows else None
        cursor = f"{last['ts']}|{last['id']}" if last else None
        return _json({"decisions": rows, "next": cursor})

    cached: dict[str, Any] = {"version": -1, "body": b""}

    async def equity(_: web.Request) -> web.StreamResponse:
        version = ctx.state.current()[0]
        if cached["version"] != version:  # worked out once a tick, however many pages ask
            points = [*ctx.queries.equity(), *ctx.state.equity_samples()]
            cached["body"] = json.dumps(equity_summary(points)).encode()
            cached["version"] = version
        return web.Response(body=cached["body"], content_type="application/json")

    async def config(_: web.Request) -> web.StreamResponse:
        return _json(ctx.config)

    async def log_lines(_: web.Request) -> web.StreamResponse:
        return _json({"log": ctx.state.log_lines()})

    async def backtests(_: web.Request) -> web.StreamResponse:
        return _json({"backtests": _list_backtests(ctx.backtests_dir)})

    async def backtest_file(request: web.Request) -> web.StreamResponse:
        name, file = request.match_info["name"], request.match_info["file"]
        folder = ctx.backtests_dir / name
        path = folder / file
        if "/" in name or name.startswith(".") or file.startswith(".") or not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        seen = -1
        while True:
            version, snap = ctx.state.current()
            if version != seen:
                seen = version
                payload = {
                    "version": version,
                    "time": snap.get("time"),
                    "equity": snap.get("equity"),
                    "decisions": snap.get("decisions", 0),
                    "fills": snap.get("fills", 0),
                    "kill_switch": snap.get("kill_switch", False),
                    "warnings": ctx.state.log_count,
                }
                try:
                    await response.write(f"event: state\ndata: {json.dumps(payload)}\n\n".encode())
                except (ConnectionResetError, RuntimeError):
                    break
            await asyncio.sleep(SSE_POLL)
        return response

    async def kill(request: web.Request) -> web.StreamResponse:
        if not bearer_ok(request.headers.get("Authorization"), ctx.token):
            return _json(
                {"error": "the kill switch needs LORABOT_API_TOKEN as a Bearer token"}, 401
            )
        on = not request.path.endswith("/off")
        was = set_kill_switch(ctx.kill_path, on, now(), "console")
        return _json({"kill_switch": on, "was_on": was})

    app.add_routes(
        [
            web.get("/", index),
            web.get("/static/{name}", static),
            web.get("/health", health),
            web.get("/metrics", metrics),
            web.get("/api/v1/status", status),
            web.get("/api/v1/positions", positions),
            web.get("/api/v1/orders", orders),
            web.get("/api/v1/fills", fills),
            web.get("/api/v1/decisions", decisions),
            web.get("/api/v1/equity", equity),
            web.get("/api/v1/config", config),
            web.get("/api/v1/log", log_lines),
            web.get("/api/v1/backtests", backtests),
            web.get("/api/v1/events", events),
            web.get("/backtests/{name}/{file}", backtest_file),
            web.post("/api/v1/kill", kill),
            web.post("/api/v1/kill/off", kill),
        ]
    )
    return app


def _static_file(name: str) -> web.StreamResponse:
    path = STATIC / name
    kind = _STATIC_TYPES.get(path.suffix)
    if "/" in name or kind is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.Response(body=path.read_bytes(), content_type=kind, charset="utf-8")


def _list_backtests(folder: Path) -> list[dict[str, Any]]:
    """Run folders with a report.html, newest first."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if (p / "report.html").is_file()]
    runs.sort(key=lambda p: (p / "report.html").stat().st_mtime, reverse=True)
    return [{"name": p.name, "url": f"/backtests/{p.name}/report.html"} for p in runs[:200]]
