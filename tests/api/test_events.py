"""CUSTODY.md §3 at the sync endpoint: each rule, and that a refusal changes nothing it shouldn't."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from sqlalchemy import select

from server.db.models import custody_events
from shared.crypto import SigningKey
from shared.events import sign_event
from shared.timeutil import as_utc, to_wire
from tests.api.conftest import table_counts
from tests.conftest import BOTH_SQLITE_WRITERS

pytestmark = BOTH_SQLITE_WRITERS


async def _ready(api, courier="courier1", kind="submission"):
    created = await api.create_shipment(kind)
    await api.assign(created["code"], courier)
    return created["code"], created["head"]


async def _statuses(r):
    assert r.status_code == 200, r.text
    return [(x["status"], x.get("reason", "")) for x in r.json()["results"]]


async def test_rejections_are_kept_with_reasons_and_change_nothing(api):
    code, head = await _ready(api)
    good = await api.event("courier1", code, "picked_up", head)
    bad_sig = dict(good, sig=good["sig"][:-4] + ("AAAA" if not good["sig"].endswith("AAAA") else "BBBB"))
    wrong_prev = await api.event("courier1", code, "picked_up", "0" * 64)
    illegal = await api.event(
        "courier1", code, "delivered", head, counterparty={"name": "X", "role": "clerk"}, data={}
    )
    no_signature = await api.event(
        "courier1", code, "picked_up", head, attachments={"signature": None, "photos": []}
    )
    no_fee = await api.event("courier1", code, "picked_up", head, data={"components": ["Tờ khai"]})
    unknown = await api.event("courier1", "1234567890123", "picked_up", head)
    tampered = dict(good, data={"components": ["Tờ khai"], "fee_vnd": 1})  # hash no longer matches
    r = await api.sync("courier1", [bad_sig, wrong_prev, illegal, no_signature, no_fee, unknown, tampered])
    results = await _statuses(r)
    assert [s for s, _ in results] == ["rejected"] * 7
    reasons = [reason for _, reason in results]
    assert "signature" in reasons[0]
    assert "not the current head" in reasons[1]
    assert "illegal transition" in reasons[2] and "registered" in reasons[2]
    assert "signature in attachments.signature" in reasons[3]
    assert "fee_vnd" in reasons[4]
    assert reasons[5] == "unknown shipment 1234567890123"
    assert "hash does not match" in reasons[6]
    assert r.json()["results"][1]["head"] == head  # the phone learns where the chain is

    detail = await api.shipment(code)
    assert detail["state"] == "registered" and detail["head"] == head and len(detail["events"]) == 1
    assert {x["id"] for x in detail["rejected"]} >= {wrong_prev["id"], illegal["id"], no_signature["id"]}
    assert all(x["reason"] for x in detail["rejected"])

    # the good one still goes through afterwards
    assert await _statuses(await api.sync("courier1", [good])) == [("accepted", "")]


async def test_duplicates_and_conflicts(api):
    code, head = await _ready(api)
    ev = await api.event("courier1", code, "picked_up", head)
    assert (await _statuses(await api.sync("courier1", [ev])))[0][0] == "accepted"
    again = await api.sync("courier1", [ev, ev])
    assert [x["status"] for x in again.json()["results"]] == ["duplicate", "duplicate"]
    key = api.devices["courier1"]
    body = {k: v for k, v in ev.items() if k not in ("hash", "sig", "device")}
    body["data"] = {"components": ["Tờ khai"], "fee_vnd": 0}
    conflicting = msgspec.to_builtins(sign_event(key, **body))
    [(status, reason)] = await _statuses(await api.sync("courier1", [conflicting]))
    assert status == "rejected" and reason.startswith("conflict")
    # the same id again, re-signed as if it followed the current head
    body.update(
        type="delivery_failed",
        prev=ev["hash"],
        counterparty=None,
        data={"reason": "not_home"},
        attachments={"signature": None, "photos": []},
    )
    sneaky = msgspec.to_builtins(sign_event(key, **body))
    [(status, reason)] = await _statuses(await api.sync("courier1", [sneaky]))
    assert status == "rejected" and reason.startswith("conflict")
    assert len((await api.shipment(code))["events"]) == 2


async def test_batch_is_applied_in_chain_order(api):
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    e2 = await api.event("courier1", code, "delivery_failed", e1["hash"])
    e3 = await api.event("courier1", code, "delivered", e2["hash"])
    results = await _statuses(await api.sync("courier1", [e3, e1, e2]))
    assert [s for s, _ in results] == ["accepted"] * 3
    detail = await api.shipment(code)
    assert [e["event"]["type"] for e in detail["events"]] == [
        "registered",
        "picked_up",
        "delivery_failed",
        "delivered",
    ]
    assert detail["attempts"] == 1 and detail["state"] == "delivered"


async def test_ownership_actor_and_device(api):
    code, head = await _ready(api, "courier1")
    theirs = await api.event("courier2", code, "picked_up", head)
    [(status, reason)] = await _statuses(await api.sync("courier2", [theirs]))
    assert status == "rejected" and "not assigned to courier:" in reason
    # courier2 sending an event that claims to be courier1's
    await api.enroll("courier1")
    posing = await api.event("courier2", code, "picked_up", head, actor=f"courier:{api.user_ids['courier1']}")
    [(status, reason)] = await _statuses(await api.sync("courier2", [posing]))
    assert status == "rejected" and "is not the signed-in user" in reason
    # a key nobody enrolled
    stranger = SigningKey.generate()
    fields = {
        k: v
        for k, v in (await api.event("courier1", code, "picked_up", head)).items()
        if k not in ("hash", "sig", "device")
    }
    unenrolled = msgspec.to_builtins(sign_event(stranger, **fields))
    [(status, reason)] = await _statuses(await api.sync("courier1", [unenrolled]))
    assert status == "rejected" and "not enrolled" in reason
    # a courier cannot read a shipment that is not theirs
    r = await api.call("GET", f"/api/v1/shipments/{code}", "courier2")
    assert r.status_code == 403


async def test_final_states_do_not_move(api):
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    e2 = await api.event("courier1", code, "delivered", e1["hash"])
    await api.sync("courier1", [e1, e2])
    late = await api.event("courier1", code, "delivery_failed", e2["hash"])
    [(status, reason)] = await _statuses(await api.sync("courier1", [late]))
    assert status == "rejected" and "final state" in reason


async def test_content_rules(api):
    code, head = await _ready(api)
    e1 = await api.event("courier1", code, "picked_up", head)
    await api.sync("courier1", [e1])
    cases = [
        (
            await api.event("courier1", code, "delivery_failed", e1["hash"], data={"reason": "aliens"}),
            "data.reason must be one of",
        ),
        (
            await api.event("courier1", code, "delivery_failed", e1["hash"], data={"reason": "other"}),
            "needs a data.note",
        ),
        (
            await api.event(
                "courier1", code, "delivery_failed", e1["hash"], location=None, data={"reason": "not_home"}
            ),
            "no_fix_reason",
        ),
        (await api.event("courier1", code, "delivered", e1["hash"], data={}), "identity.method"),
        (await api.event("courier1", code, "transferred", e1["hash"]), "a transfer goes to"),
    ]
    results = await _statuses(await api.sync("courier1", [ev for ev, _ in cases]))
    for (status, reason), (_, expected) in zip(results, cases, strict=True):
        assert status == "rejected" and expected in reason, reason
    ok = await api.event(
        "courier1",
        code,
        "delivery_failed",
        e1["hash"],
        location=None,
        data={"reason": "other", "note": "Cổng khóa", "no_fix_reason": "gps_off"},
    )
    assert (await _statuses(await api.sync("courier1", [ok])))[0][0] == "accepted"


async def test_identity_mismatch_is_flagged_not_hidden(api):
    code, head = await _ready(api, kind="result")
    e1 = await api.event(
        "courier1", code, "picked_up", head, counterparty={"name": "Phạm Minh Tuấn", "role": "clerk"}, data={}
    )
    e2 = await api.event(
        "courier1",
        code,
        "delivered",
        e1["hash"],
        counterparty={"name": "Nguyễn Thị Bích", "role": "citizen", "id_last4": "0000"},
    )
    assert [s for s, _ in await _statuses(await api.sync("courier1", [e1, e2]))] == ["accepted"] * 2
    detail = await api.shipment(code)
    assert detail["events"][-1]["flags"] == ["identity_mismatch"]


async def test_transfer_hands_the_assignment_on(api):
    code, head = await _ready(api, "courier1")
    await api.login("courier2")
    e1 = await api.event("courier1", code, "picked_up", head)
    e2 = await api.event(
        "courier1",
        code,
        "transferred",
        e1["hash"],
        counterparty={"name": "Trần Thị Lan", "role": "courier", "user_id": api.user_ids["courier2"]},
    )
    assert [s for s, _ in await _statuses(await api.sync("courier1", [e1, e2]))] == ["accepted"] * 2
    mine = (await api.call("GET", "/api/v1/me/assignments", "courier2")).json()["items"]
    assert [i["code"] for i in mine] == [code] and mine[0]["stop"]["kind"] == "delivery"
    e3 = await api.event("courier2", code, "delivered", e2["hash"])
    assert (await _statuses(await api.sync("courier2", [e3])))[0][0] == "accepted"
    late = await api.event("courier1", code, "delivery_failed", e2["hash"])
    assert (await _statuses(await api.sync("courier1", [late])))[0][0] == "rejected"


async def test_three_clocks_are_kept_apart(api, db):
    code, head = await _ready(api)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    e1 = await api.event(
        "courier1",
        code,
        "picked_up",
        head,
        occurred_at=to_wire(two_days_ago),
        location={
            "lat": 13.98,
            "lon": 108.0,
            "accuracy_m": 5.0,
            "fix_at": to_wire(two_days_ago - timedelta(seconds=30)),
        },
    )
    e2 = await api.event(
        "courier1",
        code,
        "delivery_failed",
        e1["hash"],
        occurred_at=to_wire(datetime.now(UTC) + timedelta(hours=3)),
    )
    await api.sync("courier1", [e1, e2])
    detail = await api.shipment(code)
    ev = detail["events"][1]
    assert ev["event"]["occurred_at"] == to_wire(two_days_ago)
    assert ev["event"]["location"]["fix_at"] == to_wire(two_days_ago - timedelta(seconds=30))
    received = datetime.fromisoformat(ev["received_at"])
    assert received - two_days_ago > timedelta(days=1, hours=23)
    assert detail["events"][2]["flags"] == ["device_clock_ahead"]
    # the columns the reports read hold the same instants, to the millisecond
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(custody_events.c.occurred_at, custody_events.c.fix_at).where(
                    custody_events.c.id == e1["id"]
                )
            )
        ).one()
    ms = two_days_ago.replace(microsecond=two_days_ago.microsecond // 1000 * 1000)
    assert (as_utc(row.occurred_at), as_utc(row.fix_at)) == (ms, ms - timedelta(seconds=30))


async def test_malformed_batches_are_refused_whole(api, db):
    code, head = await _ready(api)
    good = await api.event("courier1", code, "picked_up", head)
    await api.login("courier1")
    before = await table_counts(db)
    r = await api.call(
        "POST",
        "/api/v1/events",
        "courier1",
        content=b'{"events": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and "not valid JSON" in r.json()["detail"]
    wrong_type = dict(good, location=dict(good["location"], lat="13.98"))
    r = await api.sync("courier1", [good, wrong_type])
    assert r.status_code == 400
    assert (
        "Expected `float`, got `str`" in r.json()["detail"] and "events[1].location.lat" in r.json()["detail"]
    )
    r = await api.sync("courier1", [dict(good, extra_field=1)])
    assert r.status_code == 400 and "extra_field" in r.json()["detail"]
    r = await api.sync("courier1", [dict(good, type="teleported")])
    assert r.status_code == 400 and "events[0].type" in r.json()["detail"]
    r = await api.sync("courier1", [dict(good, occurred_at="22/11/2026")])
    assert r.status_code == 400 and "occurred_at" in r.json()["detail"]
    r = await api.sync("courier1", [good, dict(good, occurred_at="2026-13-45T25:61:61.000Z")])
    assert r.status_code == 400 and r.json()["detail"].startswith(
        "Invalid request body at `events[1].occurred_at`: 2026-13-45T25:61:61.000Z is not a real UTC time"
    )
    r = await api.sync(
        "courier1", [dict(good, location=dict(good["location"], fix_at="2026-02-29T10:00:00.000Z"))]
    )
    assert (
        r.status_code == 400 and "`events[0].location.fix_at`: 2026-02-29T10:00:00.000Z" in r.json()["detail"]
    )
    r = await api.sync("courier1", [dict(good, occurred_at="２０２６-11-22T03:04:05.123Z")])
    assert r.status_code == 400 and "events[0].occurred_at" in r.json()["detail"]
    r = await api.sync("courier1", [good] * 501)
    assert r.status_code == 413 and "at most 500" in r.json()["detail"]
    assert await table_counts(db) == before


async def _long_chain(api, code, head, n):
    events, prev = [], head
    for i in range(n):
        type_ = "picked_up" if i == 0 else "delivery_failed"
        ev = await api.event("courier1", code, type_, prev)
        events.append(ev)
        prev = ev["hash"]
    return events


@pytest.fixture
def slow_checks(monkeypatch):
    """Signature checks that take a while, so a big batch is applied before they are in
    (on SQLite, under a savepoint that is kept only if every signature verifies)."""
    from server.custody.verifier import SignaturePool

    real = SignaturePool._call

    def slow(self, blob):
        time.sleep(0.05)
        return real(self, blob)

    monkeypatch.setattr(SignaturePool, "_call", slow)


async def test_a_forged_signature_in_a_big_batch_stops_its_chain_there(api, db, slow_checks):
    code, head = await _ready(api)
    chain = await _long_chain(api, code, head, 20)  # enough to go to the signature helpers
    sig = chain[3]["sig"]
    chain[3] = dict(chain[3], sig=sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB"))
    before = await table_counts(db)
    results = await _statuses(await api.sync("courier1", chain))
    assert [s for s, _ in results] == ["accepted"] * 3 + ["rejected"] * 17
    assert "signature" in results[3][1]
    assert all("not the current head" in reason for _, reason in results[4:])
    detail = await api.shipment(code)
    assert detail["head"] == chain[2]["hash"] and len(detail["events"]) == 4
    after = await table_counts(db)
    assert after["custody_events"] - before["custody_events"] == 3
    assert after["log_nodes"] - before["log_nodes"] >= 3
    assert after["rejected_events"] - before["rejected_events"] == 17
    # the rest of the chain goes through once the forged event is sent as signed
    fixed = [dict(chain[3], sig=sig), *chain[4:]]
    assert [s for s, _ in await _statuses(await api.sync("courier1", fixed))] == ["accepted"] * 17
    assert (await api.shipment(code))["head"] == chain[-1]["hash"]


async def test_a_forgery_found_after_the_free_part_was_sent_redoes_the_transaction(
    api, db, slow_checks, monkeypatch
):
    """PostgreSQL sends the part of a big batch that needs no place in the log (its
    shipments' new heads, rejected events, the citizen's messages) while the signatures are
    still being checked; a forgery found then cannot be taken out of the transaction: it is
    rolled back and run again, and nothing of the first try is kept."""
    if db.is_sqlite:
        pytest.skip("SQLite writes under a real savepoint (the test above)")
    from server.custody import repository

    redone: list[int] = []
    undo = repository._HeldBack.undo

    def counted(self):
        try:
            undo(self)
        except repository.Redo:
            redone.append(self.writer.free_sent)
            raise

    monkeypatch.setattr(repository._HeldBack, "undo", counted)
    code, head = await _ready(api)
    chain = await _long_chain(api, code, head, 20)
    sig = chain[7]["sig"]
    chain[7] = dict(chain[7], sig=sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB"))
    before = await table_counts(db)
    size = (await api.call("GET", "/api/v1/log/head")).json()["size"]
    results = await _statuses(await api.sync("courier1", chain))
    assert redone == [1], "the free part went out before the checks were in, and was redone"
    assert [s for s, _ in results] == ["accepted"] * 7 + ["rejected"] * 13
    after = await table_counts(db)
    assert after["custody_events"] - before["custody_events"] == 7
    assert after["rejected_events"] - before["rejected_events"] == 13
    assert (await api.shipment(code))["head"] == chain[6]["hash"]
    # the log took the 7 once: the first try's shipment update and rows went with it
    assert (await api.call("GET", "/api/v1/log/head")).json()["size"] == size + 7


async def test_a_reused_id_in_a_big_batch_is_a_conflict(api, slow_checks):
    code, head = await _ready(api)
    first = await api.event("courier1", code, "picked_up", head)
    assert await _statuses(await api.sync("courier1", [first])) == [("accepted", "")]
    # the same id, re-signed as if it followed the current head, among a long good chain
    body = {k: v for k, v in first.items() if k not in ("hash", "sig", "device")}
    body.update(
        type="delivery_failed",
        prev=first["hash"],
        counterparty=None,
        data={"reason": "not_home"},
        attachments={"signature": None, "photos": []},
    )
    sneaky = msgspec.to_builtins(sign_event(api.devices["courier1"], **body))
    other, other_head = await _ready(api)
    chain = await _long_chain(api, other, other_head, 17)
    results = await _statuses(await api.sync("courier1", [sneaky, *chain]))
    assert results[0][0] == "rejected" and results[0][1].startswith("conflict")
    assert [s for s, _ in results[1:]] == ["accepted"] * 17
    assert len((await api.shipment(code))["events"]) == 2


async def test_a_big_batch_is_checked_by_the_helper_processes_with_every_reason(api, client):
    """Signatures of a big batch are checked in helper processes; each broken event still
    gets its own reason, worded as in a small batch."""
    pool = client.app.state.signatures
    assert pool.processes >= 1
    code, head = await _ready(api)
    chain = await _long_chain(api, code, head, 20)
    other, other_head = await _ready(api)
    tail = await _long_chain(api, other, other_head, 20)
    tampered = dict(tail[5], data={"reason": "refused"})  # body changed, hash and sig kept
    sig = tail[5]["sig"]
    bad_sig = dict(tail[5], sig=sig[:-4] + ("AAAA" if not sig.endswith("AAAA") else "BBBB"))
    short_sig = dict(tail[5], sig="AAAA")
    results = await _statuses(await api.sync("courier1", [*chain, *tail[:5], tampered]))
    assert [s for s, _ in results] == ["accepted"] * 25 + ["rejected"]
    assert results[-1][1].startswith("hash does not match")
    assert any(h.alive() for h in pool._helpers), "a batch of 26 was checked by a helper"
    results = await _statuses(await api.sync("courier1", [*tail[:5], bad_sig, short_sig, *tail[6:]]))
    assert [s for s, _ in results[:5]] == ["duplicate"] * 5
    assert results[5] == ("rejected", "signature: signature does not verify")
    assert results[6] == ("rejected", "signature: an Ed25519 signature has 64 bytes")
    assert all(s == "rejected" and "not the current head" in r for s, r in results[7:])


async def test_a_helper_that_dies_is_replaced(api, client):
    pool = client.app.state.signatures
    code, head = await _ready(api)
    chain = await _long_chain(api, code, head, 60)
    assert [s for s, _ in await _statuses(await api.sync("courier1", chain[:20]))] == ["accepted"] * 20
    dead = [h for h in pool._helpers if h.alive()]
    assert dead
    for h in dead:
        h.proc.kill()
        h.proc.wait()
    forged = dict(chain[20], sig=chain[21]["sig"])
    results = await _statuses(await api.sync("courier1", [forged, *chain[21:40]]))
    assert results[0] == ("rejected", "signature: signature does not verify")
    assert all("not the current head" in r for _, r in results[1:])
    assert [s for s, _ in await _statuses(await api.sync("courier1", chain[20:]))] == ["accepted"] * 40
    assert any(h.alive() for h in pool._helpers if h not in dead)
