"""Concurrent syncs never fork a chain: on SQLite (one writer, BEGIN IMMEDIATE) and on
PostgreSQL (row locks), within one server and across two servers sharing the database."""

from __future__ import annotations

import asyncio

import msgspec
from litestar.testing import AsyncTestClient

from server.app import create_app
from shared.events import CustodyEvent, verify_event
from tests.api.conftest import Api
from tests.conftest import BOTH_SQLITE_WRITERS

pytestmark = BOTH_SQLITE_WRITERS


async def _chain_ok(api: Api, code: str) -> list[dict]:
    detail = await api.shipment(code)
    prev = None
    for view in detail["events"]:
        ev = msgspec.convert(view["event"], CustodyEvent)
        verify_event(ev)
        assert ev.prev == prev, "chain forked or broken"
        prev = ev.hash
    assert detail["head"] == prev
    return detail["events"]


async def test_competing_events_for_one_head_accept_exactly_one(api):
    created = await api.create_shipment()
    code = created["code"]
    await api.assign(code)
    e1 = await api.event("courier1", code, "picked_up", created["head"])
    await api.sync("courier1", [e1])
    # twelve different events all claiming the same predecessor, sent at once
    rivals = [await api.event("courier1", code, "delivery_failed", e1["hash"]) for _ in range(12)]
    responses = await asyncio.gather(*(api.sync("courier1", [ev]) for ev in rivals))
    statuses = [r.json()["results"][0]["status"] for r in responses]
    assert statuses.count("accepted") == 1 and statuses.count("rejected") == 11
    events = await _chain_ok(api, code)
    assert len(events) == 3
    assert len((await api.shipment(code))["rejected"]) == 11


async def test_two_servers_same_database_same_chain(api, settings):
    second_app = create_app(settings)
    async with AsyncTestClient(second_app, base_url="http://testserver") as other_client:
        other = Api(other_client)
        other._tokens = api._tokens
        created = await api.create_shipment()
        code = created["code"]
        await api.assign(code)
        await api.login("courier1")
        chain = []
        head = created["head"]
        for type_ in ("picked_up", "delivery_failed", "delivery_failed", "delivered"):
            ev = await api.event("courier1", code, type_, head)
            chain.append(ev)
            head = ev["hash"]
        # the phone retries while the first sync is still running, against another server
        rounds = await asyncio.gather(
            api.sync("courier1", chain),
            other.sync("courier1", chain),
            api.sync("courier1", chain[:2]),
            other.sync("courier1", chain[2:]),
        )
        for r in rounds:
            assert r.status_code == 200, r.text
        per_event: dict[str, list[str]] = {ev["id"]: [] for ev in chain}
        for r in rounds:
            for res in r.json()["results"]:
                per_event[res["id"]].append(res["status"])
        for statuses in per_event.values():
            assert statuses.count("accepted") == 1, per_event
            assert set(statuses) <= {"accepted", "duplicate"}
        events = await _chain_ok(api, code)
        assert [v["event"]["type"] for v in events] == [
            "registered",
            "picked_up",
            "delivery_failed",
            "delivery_failed",
            "delivered",
        ]


async def test_many_shipments_in_parallel(api):
    codes_heads = []
    for _ in range(8):
        c = await api.create_shipment()
        await api.assign(c["code"])
        codes_heads.append((c["code"], c["head"]))
    batches = []
    for code, head in codes_heads:
        e1 = await api.event("courier1", code, "picked_up", head)
        e2 = await api.event("courier1", code, "delivered", e1["hash"])
        batches.append([e1, e2])
    responses = await asyncio.gather(*(api.sync("courier1", b) for b in batches))
    assert all(x["status"] == "accepted" for r in responses for x in r.json()["results"])
    for code, _ in codes_heads:
        assert len(await _chain_ok(api, code)) == 3
