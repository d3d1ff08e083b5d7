"""Dossier intake by a unit's API key (issue 17 item 4): keys, scope, idempotency by dossier
code, and twenty identical requests at once on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from litestar.testing import AsyncTestClient
from sqlalchemy import func, select

from server.app import create_app
from server.db.models import intake_records, shipments
from server.intake import service as intake
from shared.timeutil import to_wire, utcnow
from tests.api.conftest import PARTY_AGENCY, PARTY_CITIZEN


def _body(dossier: str = "000.00.12.H21-261202-0007", **over) -> dict:
    return {
        "kind": "result",
        "dossier_ref": dossier,
        "procedure": "Cấp giấy chứng nhận quyền sử dụng đất",
        "field": "Đất đai",
        "sender": PARTY_AGENCY,
        "recipient": PARTY_CITIZEN,
        "due_at": "2026-12-10T17:00:00+07:00",
        "fee_vnd": 0,
        **over,
    }


async def _key(db, unit: str = "TTHCC-GL") -> str:
    return (await intake.create_key(db, unit, "Phần mềm một cửa (thử)")).key


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _count(db, table=shipments) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)))


async def test_key_registers_acting_as_its_unit(client, api, db):
    key = await _key(db)
    r = await client.post("/api/v1/shipments", json=_body(), headers=_auth(key))
    assert r.status_code == 201, r.text
    made = r.json()
    assert len(made["pin"]) == 6
    detail = (await client.get(f"/api/v1/shipments/{made['code']}", headers=_auth(key))).json()
    assert detail["unit"] == "TTHCC-GL" and detail["dossier_ref"] == "000.00.12.H21-261202-0007"
    actor = detail["events"][0]["event"]["actor"]
    assert actor.startswith("clerk:")  # the key's own account, named in the signed event
    # the shop's clerk sees it (same unit); the X-API-Key header works too
    assert (await api.call("GET", f"/api/v1/shipments/{made['code']}", "shopclerk")).status_code == 200
    r = await client.get(f"/api/v1/shipments/{made['code']}", headers={"X-API-Key": key})
    assert r.status_code == 200


async def test_wrong_revoked_and_out_of_scope_keys(client, api, db):
    key = await _key(db)
    other_unit_key = await _key(db, "BC-PLEIKU")
    wrong = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    r = await client.post("/api/v1/shipments", json=_body(), headers=_auth(wrong))
    assert r.status_code == 401 and "Khóa API không đúng" in r.json()["detail"]
    r = await client.post("/api/v1/shipments", json=_body(), headers={"X-API-Key": "hoso_ak_nonsense"})
    assert r.status_code == 401
    # a key only reaches its routes
    r = await client.get("/api/v1/shipments", headers=_auth(key))
    assert r.status_code == 403 and "Khóa API chỉ dùng" in r.json()["detail"]
    r = await client.get("/console/", headers=_auth(key), follow_redirects=False)
    assert r.status_code == 303  # the console wants a signed-in person
    # unit A's key cannot see unit B's shipment: 403, as for a clerk of another unit
    theirs = await api.create_shipment(user="clerk")
    r = await client.get(f"/api/v1/shipments/{theirs['code']}", headers=_auth(key))
    assert r.status_code == 403
    made = (await client.post("/api/v1/shipments", json=_body(), headers=_auth(key))).json()
    r = await client.get(f"/api/v1/shipments/{made['code']}", headers=_auth(other_unit_key))
    assert r.status_code == 403
    # revoked: 401 at once, with its own sentence; the key's account cannot sign in either
    assert await intake.revoke_key(db, key) is True
    assert await intake.revoke_key(db, key.split("_")[2]) is False
    r = await client.post("/api/v1/shipments", json=_body("HS-2"), headers=_auth(key))
    assert r.status_code == 401 and "thu hồi" in r.json()["detail"]
    username = f"apikey-{key.split('_')[2]}"
    r = await client.post("/api/v1/auth/token", json={"username": username, "password": "!"})
    assert r.status_code == 401


async def test_wrong_keys_are_limited_per_client(client, db, settings):
    for _ in range(settings.login_failures_per_client):
        r = await client.post("/api/v1/shipments", json=_body(), headers=_auth("hoso_ak_guess"))
        assert r.status_code == 401
    r = await client.post("/api/v1/shipments", json=_body(), headers=_auth("hoso_ak_guess"))
    assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
    # a right key is still taken: it is not a guess
    key = await _key(db)
    r = await client.post("/api/v1/shipments", json=_body(), headers=_auth(key))
    assert r.status_code == 201, r.text


async def test_same_request_twice_same_shipment_different_body_409(client, db):
    key = await _key(db)
    first = await client.post("/api/v1/shipments", json=_body(), headers=_auth(key))
    assert first.status_code == 201
    # the same request, members in another order and the due time in UTC: the same request
    again_body = dict(reversed(list(_body(due_at="2026-12-10T10:00:00Z").items())))
    again = await client.post("/api/v1/shipments", json=again_body, headers=_auth(key))
    assert again.status_code == 200, again.text
    assert again.json() == first.json()  # the same body, PIN included (within a day)
    assert await _count(db) == 1
    changed = await client.post("/api/v1/shipments", json=_body(fee_vnd=5000), headers=_auth(key))
    assert changed.status_code == 409
    assert "nội dung khác" in changed.json()["detail"] and "different details" in changed.json()["detail"]
    assert changed.json()["extra"]["code"] == first.json()["code"]
    # a submission with the same dossier code is another envelope of that dossier
    sub = _body(kind="submission", sender=PARTY_CITIZEN, recipient=PARTY_AGENCY)
    assert (await client.post("/api/v1/shipments", json=sub, headers=_auth(key))).status_code == 201
    # another unit's key may use the same dossier code: codes are the unit's own
    other = await _key(db, "BC-PLEIKU")
    assert (await client.post("/api/v1/shipments", json=_body(), headers=_auth(other))).status_code == 201
    assert await _count(db) == 3


async def test_dossier_code_is_required_and_clean(client, db):
    key = await _key(db)
    for bad in ("", "  HS-1"):
        r = await client.post("/api/v1/shipments", json=_body(bad), headers=_auth(key))
        assert r.status_code == 400 and "dossier_ref" in r.json()["detail"], r.text
    r = await client.post("/api/v1/shipments", json={"kind": "result"}, headers=_auth(key))
    assert r.status_code == 400
    assert await _count(db) == 0 and await _count(db, intake_records) == 0


async def test_registered_at_the_counter_is_not_registered_again(client, api, db):
    await api.create_shipment("result", user="shopclerk", dossier_ref="HS-COUNTER-1")
    key = await _key(db)
    r = await client.post("/api/v1/shipments", json=_body("HS-COUNTER-1"), headers=_auth(key))
    assert r.status_code == 409 and "tại quầy" in r.json()["detail"]


async def test_a_replay_after_a_day_has_no_pin(client, db, monkeypatch):
    key = await _key(db)
    first = (await client.post("/api/v1/shipments", json=_body(), headers=_auth(key))).json()
    later = utcnow() + timedelta(hours=intake.REPLAY_PIN_HOURS, minutes=1)
    monkeypatch.setattr(intake, "utcnow", lambda: later)
    again = (await client.post("/api/v1/shipments", json=_body(), headers=_auth(key))).json()
    assert again == {**first, "pin": None}
    async with db.read() as conn:  # the sealed PIN never sits in clear
        sealed = await conn.scalar(select(intake_records.c.pin_sealed))
    assert sealed is not None and first["pin"].encode() not in sealed


async def test_twenty_identical_requests_at_once_make_one_shipment(client, db, settings):
    """In one process the test client lets these run mostly one after another (the fast path of
    a repeat answers most); tests/test_intake_live.py races them on two real servers, where the
    losers go through the unique claim."""
    key = await _key(db)
    body = _body("HS-PARALLEL-1", due_at=to_wire(utcnow() + timedelta(days=2)))
    second_app = create_app(settings)  # two servers on one database, ten requests each
    async with AsyncTestClient(second_app, base_url="http://testserver") as other:
        rs = await asyncio.gather(
            *(
                (client if i % 2 else other).post("/api/v1/shipments", json=body, headers=_auth(key))
                for i in range(20)
            )
        )
    statuses = sorted(r.status_code for r in rs)
    assert statuses == [200] * 19 + [201], [r.text for r in rs if r.status_code not in (200, 201)]
    assert len({r.json()["code"] for r in rs}) == 1
    assert len({r.json()["pin"] for r in rs}) == 1
    assert await _count(db) == 1 and await _count(db, intake_records) == 1
    # and twenty different bodies for one code: one wins, nineteen 409
    rs = await asyncio.gather(
        *(
            client.post("/api/v1/shipments", json=_body("HS-PARALLEL-2", fee_vnd=i), headers=_auth(key))
            for i in range(20)
        )
    )
    assert sorted(r.status_code for r in rs) == [201] + [409] * 19
    assert await _count(db) == 2
