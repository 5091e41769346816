"""The simulator's `/v5/announcements/index` (issue 21's venue side): Bybit's paging, filters and
errors, scripted items that appear when their time comes, the admin endpoint, and the official
pybit client's `get_announcement` reading the same page."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from pybit.unified_trading import HTTP

from adapters.bybit.sim import Simulator


async def get(sim: Simulator, **params: Any) -> dict[str, Any]:
    url = f"{sim.url}/v5/announcements/index"
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body


def script(sim: Simulator, count: int) -> None:
    now = sim.now_ms()
    for n in range(count):
        sim.announcements.add(
            f"Bybit will list COIN{n}USDT perpetual",
            "new_crypto" if n % 2 == 0 else "delistings",
            publish_ms=now - (count - n) * 60_000,  # COIN{count-1} is the newest
            tags=["Derivatives"] if n % 3 == 0 else ["Spot"],
        )


async def test_pages_come_newest_first_with_bybits_envelope(sim: Simulator) -> None:
    script(sim, 25)
    first = await get(sim, locale="en-US", limit=10)
    assert first["retCode"] == 0 and first["result"]["total"] == 25
    titles = [item["title"] for item in first["result"]["list"]]
    assert titles[0] == "Bybit will list COIN24USDT perpetual" and len(titles) == 10
    last = await get(sim, locale="en-US", limit=10, page=3)
    assert [i["title"] for i in last["result"]["list"]][-1] == "Bybit will list COIN0USDT perpetual"
    assert len(last["result"]["list"]) == 5
    item = first["result"]["list"][0]
    assert item["type"] == {"title": "New Listings", "key": "new_crypto"}
    assert item["publishTime"] == item["dateTimestamp"] and item["url"].startswith("https://")
    assert set(item) >= {"description", "tags", "startDataTimestamp", "endDataTimestamp"}
    beyond = await get(sim, locale="en-US", limit=10, page=4)
    assert beyond["result"] == {"total": 25, "list": []}


async def test_filters_and_errors(sim: Simulator) -> None:
    script(sim, 12)
    delistings = await get(sim, locale="en-US", type="delistings", limit=100)
    assert delistings["result"]["total"] == 6
    assert {i["type"]["key"] for i in delistings["result"]["list"]} == {"delistings"}
    tagged = await get(sim, locale="en-US", tag="Derivatives", limit=100)
    assert tagged["result"]["total"] == 4  # n = 0, 3, 6, 9
    assert (await get(sim, locale="zh-TW"))["result"]["total"] == 0
    assert (await get(sim))["retCode"] == 10001  # locale is required
    assert (await get(sim, locale="en-US", limit=101))["retCode"] == 10001
    assert (await get(sim, locale="en-US", page=0))["retCode"] == 10001
    sim.faults.fail_rest("/v5/announcements/index", 10006, count=1)
    assert (await get(sim, locale="en-US"))["retCode"] == 10006


async def test_a_scheduled_item_appears_when_its_time_comes(sim: Simulator) -> None:
    sim.announcements.add(
        "Bybit will delist ABCUSDT perpetual", "delistings", publish_ms=sim.now_ms() + 400
    )
    assert (await get(sim, locale="en-US"))["result"]["total"] == 0
    await asyncio.sleep(0.5)
    page = await get(sim, locale="en-US")
    assert [i["title"] for i in page["result"]["list"]] == ["Bybit will delist ABCUSDT perpetual"]


async def test_the_admin_endpoint_adds_an_item(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{sim.url}/sim/announcement",
            json={"title": "Scheduled maintenance", "type": "maintenance_updates"},
        ) as response:
            assert response.status == 200
        async with session.post(f"{sim.url}/sim/announcement", json={"type": "x"}) as response:
            assert response.status == 400 and "title" in (await response.json())["error"]
    page = await get(sim, locale="en-US")
    assert page["result"]["list"][0]["type"]["key"] == "maintenance_updates"


async def test_pybit_get_announcement_reads_the_same_page(sim: Simulator) -> None:
    script(sim, 7)

    def read() -> dict[str, Any]:
        http = HTTP(max_retries=1, retry_codes={-1})
        http.endpoint = sim.url
        result: dict[str, Any] = http.get_announcement(locale="en-US", limit=5, page=2)
        return result

    theirs = await asyncio.wait_for(asyncio.to_thread(read), 30)
    ours = await get(sim, locale="en-US", limit=5, page=2)
    assert theirs["result"] == ours["result"] and theirs["result"]["total"] == 7
