"""The happy path end to end through the HTTP API."""

from __future__ import annotations

import msgspec

from shared.events import CustodyEvent, verify_event
from shared.labels import is_authentic, parse_label_url


async def test_health_and_keys(api):
    r = await api.call("GET", "/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["db"] == "ok"
    keys = (await api.call("GET", "/api/v1/keys")).json()
    assert set(keys) == {
        "label_public_key",
        "event_public_key",
        "log_public_key",
        "retired",
        "label_keys",
        "seal_public_key",
    }
    [label] = keys["label_keys"]
    assert (label["public_key"], label["status"]) == (keys["label_public_key"], "current")


async def test_register_pickup_deliver(api):
    created = await api.create_shipment()
    code = created["code"]
    assert created["state"] == "registered" and len(created["pin"]) == 6
    got_code, sig = parse_label_url(created["tracking_url"])
    keys = (await api.call("GET", "/api/v1/keys")).json()
    assert got_code == code and is_authentic(code, sig, [keys["label_public_key"]])

    await api.assign(code, "courier1")
    mine = (await api.call("GET", "/api/v1/me/assignments", "courier1")).json()
    item = next(i for i in mine["items"] if i["code"] == code)
    assert item["stop"]["kind"] == "pickup" and item["head"] == created["head"]
    assert item["next_events"] == ["picked_up"]

    picked = await api.event("courier1", code, "picked_up", created["head"])
    delivered = await api.event(
        "courier1",
        code,
        "delivered",
        picked["hash"],
        counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"},
        data={},
    )
    r = await api.sync("courier1", [picked, delivered])
    assert r.status_code == 200, r.text
    assert [x["status"] for x in r.json()["results"]] == ["accepted", "accepted"]

    detail = await api.shipment(code)
    assert detail["state"] == "delivered" and detail["head"] == delivered["hash"]
    assert [e["event"]["type"] for e in detail["events"]] == ["registered", "picked_up", "delivered"]
    assert detail["custodian"]["role"] == "clerk"
    # the chain links and every signature verifies, server's and device's
    prev = None
    for view in detail["events"]:
        ev = msgspec.convert(view["event"], CustodyEvent)
        verify_event(ev)
        assert ev.prev == prev
        prev = ev.hash
    assert detail["events"][0]["event"]["device"] == keys["event_public_key"]
    assert detail["events"][1]["missing_attachments"] == [picked["attachments"]["signature"]]
