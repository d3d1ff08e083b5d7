from __future__ import annotations

from datetime import timedelta

import msgspec

from shared import codes
from shared.events import CustodyEvent, verify_event
from shared.timeutil import to_wire, utcnow
from tests.api.conftest import PARTY_CITIZEN, table_counts


async def test_create_validation(api, db):
    await api.login("clerk")
    before = await table_counts(db)
    base = {"kind": "submission", "due_at": to_wire(utcnow() + timedelta(days=2)), "sender": PARTY_CITIZEN}
    cases = [
        ({**base}, 400, "recipient is required"),
        ({**base, "recipient": PARTY_CITIZEN, "due_at": "2026-12-01T10:00:00"}, 400, "time zone"),
        ({**base, "recipient": PARTY_CITIZEN, "fee_vnd": "50000"}, 400, "fee_vnd"),
        ({**base, "recipient": PARTY_CITIZEN, "fee_vnd": -1}, 400, "fee_vnd"),
        ({**base, "recipient": PARTY_CITIZEN, "kind": "parcel"}, 400, "kind"),
        ({**base, "recipient": PARTY_CITIZEN, "colour": "red"}, 400, "colour"),
        ({**base, "recipient": {**PARTY_CITIZEN, "id_last4": "12"}}, 400, "id_last4"),
        ({**base, "recipient": PARTY_CITIZEN, "kind": "result", "parent": "1234567890123"}, 422, "parent"),
        ({**base, "recipient": PARTY_CITIZEN, "dest_unit": "NOPE"}, 422, "dest_unit"),
    ]
    for body, status, words in cases:
        r = await api.call("POST", "/api/v1/shipments", "clerk", json=body)
        assert r.status_code == status, (body, r.text)
        assert words in r.json()["detail"], r.json()["detail"]
    assert await table_counts(db) == before


async def test_registered_event_is_server_signed_and_pin_is_hashed(api, db):
    created = await api.create_shipment(dest_unit="TTHCC-GL")
    assert codes.is_valid(created["code"]) and created["pin"].isdigit() and len(created["pin"]) == 6
    detail = await api.shipment(created["code"])
    ev = msgspec.convert(detail["events"][0]["event"], CustodyEvent)
    keys = (await api.call("GET", "/api/v1/keys")).json()
    verify_event(ev, keys["event_public_key"])
    assert ev.type == "registered" and ev.actor.startswith("clerk:") and ev.prev is None
    assert ev.data["recipient"]["name"] == "Trung tâm Phục vụ hành chính công tỉnh Gia Lai"
    assert created["pin"] not in detail["events"][0]["event"].__repr__()
    from sqlalchemy import select

    from server.db.models import shipments

    async with db.read() as conn:
        pin_hash = await conn.scalar(select(shipments.c.pin_hash).where(shipments.c.code == created["code"]))
    assert pin_hash.startswith("$argon2") and created["pin"] not in pin_hash


async def test_result_inherits_from_its_submission(api):
    sub = await api.create_shipment("submission")
    res = await api.create_shipment(
        "result", user="shopclerk", sender=None, recipient=None, parent=codes.group(sub["code"])
    )
    assert res["pin"] is None  # the citizen keeps the PIN printed on the first receipt
    detail = await api.shipment(res["code"])
    assert detail["parent"] == sub["code"]
    assert detail["recipient"]["name"] == PARTY_CITIZEN["name"]


async def test_list_filters_and_cursor(api):
    made = [await api.create_shipment() for _ in range(5)]
    overdue = await api.create_shipment(due_at=to_wire(utcnow() - timedelta(hours=1)))
    await api.assign(made[0]["code"])
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.call("GET", "/api/v1/shipments", "dispatcher", params=params)).json()
        seen += [i["code"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6
    r = await api.call("GET", "/api/v1/shipments", "dispatcher", params={"overdue": "true"})
    assert [i["code"] for i in r.json()["items"]] == [overdue["code"]]
    r = await api.call("GET", "/api/v1/shipments", "dispatcher", params={"courier": api.user_ids["courier1"]})
    assert [i["code"] for i in r.json()["items"]] == [made[0]["code"]]
    r = await api.call("GET", "/api/v1/shipments", "dispatcher", params={"q": made[2]["code"][:9]})
    assert made[2]["code"] in [i["code"] for i in r.json()["items"]]
    r = await api.call("GET", "/api/v1/shipments", "dispatcher", params={"state": "flying"})
    assert r.status_code == 400 and "state must be one of" in r.json()["detail"]
    r = await api.call("GET", "/api/v1/shipments", "dispatcher", params={"cursor": "%%%"})
    assert r.status_code == 400
    # the one-stop shop's clerk sees nothing of the post office's own registrations without dest_unit
    r = await api.call("GET", "/api/v1/shipments", "shopclerk")
    assert r.json()["items"] == []


async def test_lookup_errors(api):
    created = await api.create_shipment()
    code = created["code"]
    typo = code[:-1] + str((int(code[-1]) + 1) % 10)
    r = await api.call("GET", f"/api/v1/shipments/{typo}", "dispatcher")
    assert r.status_code == 400 and "check digit" in r.json()["detail"]
    other = codes.new_code()
    r = await api.call("GET", f"/api/v1/shipments/{other}", "dispatcher")
    assert r.status_code == 404
    r = await api.call("GET", f"/api/v1/shipments/{code}", "courier1")
    assert r.status_code == 403


async def test_assign_and_cancel(api):
    created = await api.create_shipment()
    code = created["code"]
    await api.login("clerk")
    r = await api.call("POST", f"/api/v1/shipments/{code}/assign", "dispatcher", json={"courier_id": 999})
    assert r.status_code == 422
    r = await api.call("POST", f"/api/v1/shipments/{code}/cancel", "dispatcher", json={"reason": "Rút hồ sơ"})
    assert r.status_code == 200
    detail = await api.shipment(code)
    assert detail["state"] == "cancelled" and detail["events"][-1]["event"]["type"] == "cancelled"
    r = await api.call("POST", f"/api/v1/shipments/{code}/cancel", "dispatcher", json={"reason": "again"})
    assert r.status_code == 409 and "final state" in r.json()["detail"]
    await api.login("courier1")
    r = await api.call(
        "POST",
        f"/api/v1/shipments/{code}/assign",
        "dispatcher",
        json={"courier_id": api.user_ids["courier1"]},
    )
    assert r.status_code == 409


async def test_ids_past_the_integer_column_are_refused_not_a_server_error(api):
    """Schemathesis found both as 500s: an id no INTEGER column can hold overflowed the driver."""
    code = (await api.create_shipment())["code"]
    huge = 99999999999999999999
    r = await api.call("GET", f"/api/v1/shipments?courier={huge}", "admin")
    assert r.status_code == 400, r.text
    r = await api.call("GET", f"/api/v1/shipments?courier={2**31}", "admin")
    assert r.status_code == 400, r.text
    for courier_id in (huge, 2**31, 0):
        r = await api.call(
            "POST", f"/api/v1/shipments/{code}/assign", "dispatcher", json={"courier_id": courier_id}
        )
        assert r.status_code == 400 and "courier_id" in r.json()["detail"], r.text


async def test_codes_in_paths_follow_the_documented_pattern(api):
    """The document states the pattern; what matches it is looked up, grouped or not."""
    code = (await api.create_shipment())["code"]
    for written in (code, codes.group(code), f"{code[:4]}-{code[4:8]}-{code[8:12]}-{code[12]}"):
        r = await api.call("GET", f"/api/v1/shipments/{written}", "dispatcher")
        assert r.status_code == 200, (written, r.text)
    r = await api.call("GET", "/api/v1/shipments/0", "dispatcher")
    assert r.status_code == 400 and "code" in r.json()["detail"]


async def test_a_nul_character_is_refused_not_a_server_error(api):
    """PostgreSQL text cannot hold U+0000: before, each of these was a 500 there."""
    for query in ("q=%00", "unit=a%00", "field=%00x"):
        r = await api.call("GET", f"/api/v1/shipments?{query}", "admin")
        assert r.status_code == 400 and "NUL" in r.json()["detail"], (query, r.text)
    r = await api.call(
        "POST",
        "/api/v1/shipments",
        "clerk",
        json={"kind": "submission", "due_at": "2026-12-30T00:00:00Z", "dossier_ref": "a\x00b"},
    )
    assert r.status_code == 400 and "NUL" in r.json()["detail"], r.text
    # a backslash followed by the letters u0000 is text like any other
    r = await api.call("GET", "/api/v1/shipments?q=%5Cu0000", "admin")
    assert r.status_code == 200, r.text
