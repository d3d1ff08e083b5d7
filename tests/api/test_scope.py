"""Unit scope (issue 13.1) and the dispatcher's recovery path (issue 13.2).

The shipments here are registered by BC-PLEIKU's clerk with no destination unit, so the
one-stop shop (TTHCC-GL: `shopclerk`, `shopdispatcher`) has nothing to do with them.
"""

from __future__ import annotations

import hashlib

import msgspec

from shared.bundle import verify_bundle
from shared.events import CustodyEvent, verify_event
from tests.api.conftest import PNG_1PX, table_counts
from tests.api.test_console import console_login

SIG = hashlib.sha256(PNG_1PX).hexdigest()


async def _picked_up(api) -> tuple[str, dict]:
    created = await api.create_shipment()
    code = created["code"]
    await api.assign(code, dispatcher="dispatcher")
    r = await api.call(
        "PUT",
        f"/api/v1/attachments/{SIG}",
        "courier1",
        content=PNG_1PX,
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code in (200, 201), r.text
    e1 = await api.event("courier1", code, "picked_up", created["head"])
    r = await api.sync("courier1", [e1])
    assert r.json()["results"][0]["status"] == "accepted", r.text
    return code, e1


async def test_a_clerk_cannot_cancel_another_units_shipment(api, db):
    code = (await api.create_shipment())["code"]
    for user in ("shopclerk", "shopdispatcher", "admin"):
        await api.login(user)
    before = await table_counts(db)
    r = await api.call("POST", f"/api/v1/shipments/{code}/cancel", "shopclerk", json={"reason": "nhầm"})
    assert r.status_code == 403, r.text  # was 200: the shop's clerk cancelled the post office's envelope
    r = await api.call("POST", f"/api/v1/shipments/{code}/cancel", "shopdispatcher", json={"reason": "nhầm"})
    assert r.status_code == 403, r.text
    assert await table_counts(db) == before
    assert (await api.shipment(code))["state"] == "registered"
    r = await api.call("POST", f"/api/v1/shipments/{code}/cancel", "clerk", json={"reason": "công dân rút"})
    assert r.status_code == 200 and r.json()["code"] == code


async def test_a_dispatcher_cannot_assign_another_units_shipment(api):
    code = (await api.create_shipment())["code"]
    await api.login("courier2")
    body = {"courier_id": api.user_ids["courier2"]}
    r = await api.call("POST", f"/api/v1/shipments/{code}/assign", "shopdispatcher", json=body)
    assert r.status_code == 403, r.text
    assert (await api.shipment(code))["assigned_courier_id"] is None


async def test_attachments_are_seen_only_with_their_shipment(api):
    await _picked_up(api)
    for user, status in (("shopclerk", 404), ("shopdispatcher", 404), ("clerk", 200), ("dispatcher", 200)):
        r = await api.call("GET", f"/api/v1/attachments/{SIG}", user)
        assert r.status_code == status, (user, r.status_code)  # the shop's were 200 before
    client = api.client
    await console_login(client, "shopclerk")
    r = await client.get(f"/console/attachments/{SIG}")
    assert r.status_code == 404  # was 200: the citizen's signature, to any unit's clerk
    client.cookies.clear()
    await console_login(client, "clerk")
    assert (await client.get(f"/console/attachments/{SIG}")).status_code == 200


async def test_an_upload_no_event_names_is_the_uploaders_alone(api):
    r = await api.call(
        "PUT", f"/api/v1/attachments/{SIG}", "clerk", content=PNG_1PX, headers={"Content-Type": "image/png"}
    )
    assert r.status_code == 201
    assert (await api.call("GET", f"/api/v1/attachments/{SIG}", "clerk")).status_code == 200
    assert (await api.call("GET", f"/api/v1/attachments/{SIG}", "dispatcher")).status_code == 404
    assert (await api.call("GET", f"/api/v1/attachments/{SIG}", "auditor")).status_code == 200


async def test_a_unit_holding_an_envelope_sees_it(api):
    # the shop registers a result for the citizen's door; the post office's courier carries it
    created = await api.create_shipment("result", user="shopclerk")
    code = created["code"]
    await api.assign(code, dispatcher="shopdispatcher")
    assert (await api.call("GET", f"/api/v1/shipments/{code}", "dispatcher")).status_code == 403
    e1 = await api.event("courier1", code, "picked_up", created["head"])
    r = await api.sync("courier1", [e1])
    assert r.json()["results"][0]["status"] == "accepted", r.text
    # now one of BC-PLEIKU's couriers holds it: the post office sees it, another courier does not
    for user, status in (("dispatcher", 200), ("clerk", 200), ("shopclerk", 200), ("courier2", 403)):
        r = await api.call("GET", f"/api/v1/shipments/{code}", user)
        assert r.status_code == status, (user, r.text)
    listed = (await api.call("GET", "/api/v1/shipments", "dispatcher")).json()["items"]
    assert code in [x["code"] for x in listed]


async def test_a_courier_sees_what_they_hold_or_are_assigned(api):
    code, _ = await _picked_up(api)
    assert (await api.call("GET", f"/api/v1/shipments/{code}", "courier1")).status_code == 200
    assert (await api.call("GET", f"/api/v1/shipments/{code}", "courier2")).status_code == 403


async def test_a_dispatcher_reassigns_an_envelope_whose_transfer_jammed(api, client):
    code, e1 = await _picked_up(api)
    await api.login("courier2")
    courier2 = api.user_ids["courier2"]
    # courier1 hands the envelope to courier2 on the road, but the phone dies before it syncs
    jammed = await api.event(
        "courier1",
        code,
        "transferred",
        e1["hash"],
        counterparty={"name": "Trần Thị Lan", "role": "courier", "user_id": courier2},
    )
    body = {"courier_id": courier2}
    r = await api.call("POST", f"/api/v1/shipments/{code}/assign", "shopdispatcher", json=body)
    assert r.status_code == 403  # not the shop's to recover
    r = await api.call("POST", f"/api/v1/shipments/{code}/assign", "dispatcher", json=body)
    assert r.status_code == 200, r.text  # was 409 "Another courier holds this envelope"
    head = r.json()["head"]
    detail = await api.shipment(code)
    assert detail["head"] == head and detail["state"] == "in_custody"
    assert detail["custodian"]["user_id"] == courier2 and detail["assigned_courier_id"] == courier2
    last = msgspec.convert(detail["events"][-1]["event"], CustodyEvent)
    keys = (await api.call("GET", "/api/v1/keys")).json()
    verify_event(last, keys["event_public_key"])  # signed by the server
    assert last.type == "transferred" and last.actor == f"dispatcher:{api.user_ids['dispatcher']}"
    assert (
        last.data["reassigned"] is True
        and last.data["previous_custodian"]["user_id"] == api.user_ids["courier1"]
    )
    assert last.counterparty.user_id == courier2 and last.prev == e1["hash"]
    # the chain still verifies, as an auditor would check it
    bundle = (await api.call("GET", f"/api/v1/shipments/{code}/custody", "auditor")).json()
    assert all(c.ok for c in verify_bundle(bundle) if c.name != "witness cosignatures"), [
        (c.name, c.failures) for c in verify_bundle(bundle) if not c.ok
    ]
    # the old phone's late transfer forks the chain and is rejected; the new courier carries on
    r = await api.sync("courier1", [jammed])
    assert r.json()["results"][0]["status"] == "rejected"
    mine = (await api.call("GET", "/api/v1/me/assignments", "courier2")).json()["items"]
    assert [(a["code"], a["head"]) for a in mine] == [(code, head)]
    done = await api.event(
        "courier2", code, "delivered", head, counterparty={"name": "A", "role": "clerk"}, data={}
    )
    r = await api.sync("courier2", [done])
    assert r.json()["results"][0]["status"] == "accepted", r.text
    # the console's shipment page shows the dispatcher's event and a chain that verifies
    await console_login(client, "dispatcher")
    page = await client.get(f"/console/shipments/{code}")
    assert page.status_code == 200
    assert "Võ Thị Mai" in page.text and "reassigned" in page.text
    assert 'data-verified="true"' in page.text


async def test_a_final_shipment_cannot_be_reassigned(api):
    code = (await api.create_shipment())["code"]
    r = await api.call("POST", f"/api/v1/shipments/{code}/cancel", "clerk", json={"reason": "công dân rút"})
    assert r.status_code == 200
    await api.login("courier1")
    body = {"courier_id": api.user_ids["courier1"]}
    r = await api.call("POST", f"/api/v1/shipments/{code}/assign", "dispatcher", json=body)
    assert r.status_code == 409


async def test_the_post_office_that_brought_a_dossier_in_carries_its_result_home(api):
    # BC-PLEIKU picked up the submission; the shop registers the result for it
    submission = (await api.create_shipment())["code"]
    created = await api.create_shipment("result", user="shopclerk", parent=submission)
    code = created["code"]
    for user, status in (("dispatcher", 200), ("clerk", 200), ("courier1", 403)):
        r = await api.call("GET", f"/api/v1/shipments/{code}", user)
        assert r.status_code == status, (user, r.text)  # the dispatcher's was 403
    await api.assign(code, dispatcher="dispatcher")  # the post office dispatches its courier
    assert (await api.shipment(code))["assigned_courier_id"] == api.user_ids["courier1"]
    # a result answering nothing BC-PLEIKU registered stays the shop's
    other = (await api.create_shipment("result", user="shopclerk"))["code"]
    assert (await api.call("GET", f"/api/v1/shipments/{other}", "dispatcher")).status_code == 403
