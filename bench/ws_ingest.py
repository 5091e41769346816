"""Websocket ingest: Bybit public-stream messages per second, parsed and published.

A sender process serves Bybit's public websocket on 127.0.0.1 and, once `BybitPublicStream` has
subscribed, pushes a fixed, pre-serialised mix of kline, publicTrade and tickers messages (the
shapes Bybit sends: 1-3 trades per trade message, ticker snapshots then deltas, klines forming
and confirmed) as fast as the socket takes them. The receiver is the real stream in this process:
frame decoding, JSON parsing, topic routing, Decimal parsing, de-duplication, event construction
and an awaited `publish` per event (which only counts). The clock runs from the first data
message to the last.

A second figure runs the same messages through the stream's handler without any socket, to
show where the time goes. This measures; it decides nothing.

    python bench/ws_ingest.py [--messages 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SYMBOLS = ("BTCUSDT", "ETHUSDT")
MIX = (("trade", 0.5), ("ticker", 0.35), ("kline", 0.15))
START_MS = 1_704_067_200_000


def make_messages(count: int, seed: int = 7) -> list[str]:
    """A realistic mix; klines advance one minute every 20 kline messages per symbol."""
    rng = random.Random(seed)
    out: list[str] = []
    price = {"BTCUSDT": 42_000.0, "ETHUSDT": 2_300.0}
    kline_count = dict.fromkeys(SYMBOLS, 0)
    trade_id = 0
    snapshot_sent: set[str] = set()
    for i in range(count):
        symbol = SYMBOLS[i % 2]
        price[symbol] *= 1 + rng.gauss(0, 0.0002)
        p = round(price[symbol], 1)
        ts = START_MS + i * 10
        kind = rng.choices([k for k, _ in MIX], [w for _, w in MIX])[0]
        if i == count - 1:
            kind = "trade"  # the last message always publishes: the receiver sees the end
        if kind == "trade":
            trades = []
            for _ in range(rng.randint(1, 3)):
                trade_id += 1
                trades.append(
                    {
                        "T": ts,
                        "s": symbol,
                        "S": rng.choice(("Buy", "Sell")),
                        "v": f"{rng.randint(1, 500) / 1000:.3f}",
                        "p": f"{p:.1f}",
                        "L": "PlusTick",
                        "i": f"{trade_id:032x}",
                        "BT": False,
                    }
                )
            message: dict[str, Any] = {
                "topic": f"publicTrade.{symbol}",
                "type": "snapshot",
                "ts": ts,
                "data": trades,
            }
        elif kind == "ticker":
            data: dict[str, Any] = {
                "symbol": symbol,
                "bid1Price": f"{p - 0.1:.1f}",
                "bid1Size": "1.204",
                "ask1Price": f"{p:.1f}",
                "ask1Size": "0.388",
                "lastPrice": f"{p:.1f}",
            }
            kind_type = "delta"
            if symbol not in snapshot_sent:
                snapshot_sent.add(symbol)
                kind_type = "snapshot"
                data.update(
                    {
                        "markPrice": f"{p:.1f}",
                        "indexPrice": f"{p:.1f}",
                        "fundingRate": "0.0001",
                        "volume24h": "37205.276",
                    }
                )
            message = {
                "topic": f"tickers.{symbol}",
                "type": kind_type,
                "data": data,
                "cs": i,
                "ts": ts,
            }
        else:
            n = kline_count[symbol]
            kline_count[symbol] += 1
            minute = n // 20
            start = START_MS + minute * 60_000
            confirm = n % 20 == 19
            message = {
                "topic": f"kline.1.{symbol}",
                "ts": ts,
                "type": "snapshot",
                "data": [
                    {
                        "start": start,
                        "end": start + 59_999,
                        "interval": "1",
                        "open": f"{p:.1f}",
                        "close": f"{p:.1f}",
                        "high": f"{p + 5:.1f}",
                        "low": f"{p - 5:.1f}",
                        "volume": "12.345",
                        "turnover": "518304.1",
                        "confirm": confirm,
                        "timestamp": ts,
                    }
                ],
            }
        out.append(json.dumps(message))
    return out


def sender(port_out: Any, count: int) -> None:
    """The sending process: Bybit's subscribe handshake, then the messages, then a close."""
    from aiohttp import WSMsgType, web

    messages = make_messages(count)

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for frame in ws:
            if frame.type is not WSMsgType.TEXT:
                continue
            data = json.loads(frame.data)
            if data.get("op") == "subscribe":
                await ws.send_str(
                    json.dumps(
                        {
                            "success": True,
                            "ret_msg": "",
                            "conn_id": "bench",
                            "req_id": data.get("req_id"),
                            "op": "subscribe",
                        }
                    )
                )
                if data["args"][-1] == f"tickers.{SYMBOLS[-1]}":  # the last chunk
                    for text in messages:
                        await ws.send_str(text)
            elif data.get("op") == "ping":
                await ws.send_str(json.dumps({"success": True, "ret_msg": "pong", "op": "ping"}))
        return ws

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v5/public/linear", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_out.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


def settings_for(url: str) -> Any:
    from bot.config import Settings

    return Settings().with_overrides(
        bybit={"rest_url": url, "gap_fill": False, "ping_interval": 20, "silence_timeout": 30}
    )


async def over_loopback(port: int, count: int) -> tuple[float, int]:
    """Seconds from the first data message to the last, and events published."""
    from adapters.bybit.public import BybitPublicStream
    from bot.clock import LiveClock

    stream = BybitPublicStream(settings_for(f"http://127.0.0.1:{port}"), SYMBOLS, LiveClock())
    events = 0
    first = 0.0
    done = asyncio.Event()

    async def publish(event: object) -> None:
        nonlocal events, first
        if not first:
            first = time.perf_counter()
        events += 1
        if stream.connection.stats.messages >= count and not done.is_set():
            done.set()

    task = asyncio.create_task(stream.run(publish))
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - first
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return elapsed, events


async def in_process(messages: list[str]) -> tuple[float, int]:
    """The same messages through the stream's handler, with no socket (json.loads included)."""
    from adapters.bybit.public import BybitPublicStream
    from bot.clock import LiveClock

    stream = BybitPublicStream(settings_for("http://127.0.0.1:9"), SYMBOLS, LiveClock())
    events = 0

    async def publish(event: object) -> None:
        nonlocal events
        events += 1

    stream._publish = publish
    handler = stream._on_message
    start = time.perf_counter()
    for text in messages:
        await handler(json.loads(text))
    return time.perf_counter() - start, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from bot.log import setup_logging

    setup_logging("warning", "console")
    context = multiprocessing.get_context("spawn")
    loopback: list[float] = []
    events = 0
    for _ in range(args.repeat):
        ports: Any = context.Queue()
        process = context.Process(target=sender, args=(ports, args.messages), daemon=True)
        process.start()
        try:
            port = ports.get(timeout=60)
            elapsed, events = asyncio.run(over_loopback(port, args.messages))
        finally:
            process.terminate()
            process.join(5)
        loopback.append(args.messages / elapsed)
    messages = make_messages(args.messages)
    handler_rates = []
    for _ in range(args.repeat):
        elapsed, _ = asyncio.run(in_process(messages))
        handler_rates.append(args.messages / elapsed)
    mean_bytes = sum(map(len, messages)) / len(messages)
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(
        f"messages: {args.messages} per run ({', '.join(f'{k} {w:.0%}' for k, w in MIX)}), "
        f"{mean_bytes:.0f} bytes on average, {events} events published per run"
    )
    print(
        f"loopback, sender in its own process: median {statistics.median(loopback):,.0f} msg/s "
        f"(runs: {', '.join(f'{r:,.0f}' for r in loopback)}); "
        f"{statistics.median(loopback) * events / args.messages:,.0f} events/s"
    )
    print(
        f"handler only, no socket:            median {statistics.median(handler_rates):,.0f} "
        f"msg/s (runs: {', '.join(f'{r:,.0f}' for r in handler_rates)})"
    )


if __name__ == "__main__":
    main()
