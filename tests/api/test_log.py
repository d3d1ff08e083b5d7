"""The Merkle log over HTTP, the export bundle, witnesses, and tampering with a real database."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import delete, select, update

from server.db.models import custody_events, log_nodes
from shared import merkle
from shared.bundle import (
    FAILED,
    UNPROVEN,
    VERIFIED,
    Trust,
    check_consistency,
    head_message,
    outcome,
    verify_bundle,
)
from shared.crypto import SigningKey, verify
from tests.conftest import BOTH_SQLITE_WRITERS

pytestmark = BOTH_SQLITE_WRITERS

ROOT = Path(__file__).resolve().parents[2]


async def _journey(api, n_shipments=2):
    """Shipments with a few accepted events each; returns their codes."""
    codes = []
    for _ in range(n_shipments):
        c = await api.create_shipment()
        await api.assign(c["code"])
        e1 = await api.event("courier1", c["code"], "picked_up", c["head"])
        e2 = await api.event("courier1", c["code"], "delivery_failed", e1["hash"])
        e3 = await api.event("courier1", c["code"], "delivered", e2["hash"])
        r = await api.sync("courier1", [e1, e2, e3])
        assert all(x["status"] == "accepted" for x in r.json()["results"])
        codes.append(c["code"])
    return codes


async def _export(api, code, user="auditor"):
    r = await api.call("GET", f"/api/v1/shipments/{code}/custody", user)
    assert r.status_code == 200, r.text
    return r.json()


def _failed(checks):
    return {c.name: c.failures for c in checks if not c.ok}


async def test_head_inclusion_and_consistency(api):
    keys = (await api.call("GET", "/api/v1/keys")).json()
    await _journey(api, 1)
    old = (await api.call("GET", "/api/v1/log/head")).json()
    assert old["size"] == 5  # registered, the courier's device enrolment, three courier events
    verify(keys["log_public_key"], old["sig"], head_message(old["size"], old["root"], old["timestamp"]))
    codes = await _journey(api, 2)
    new = (await api.call("GET", "/api/v1/log/head")).json()
    assert new["size"] == 13
    again = (await api.call("GET", "/api/v1/log/head")).json()
    assert again == new  # no growth, same signed head
    detail = await api.shipment(codes[-1])
    for view in detail["events"]:
        h = view["event"]["hash"]
        r = (await api.call("GET", "/api/v1/log/inclusion", params={"leaf": h, "size": new["size"]})).json()
        merkle.verify_inclusion(
            merkle.leaf_hash(bytes.fromhex(h)),
            r["index"],
            new["size"],
            [bytes.fromhex(p) for p in r["proof"]],
            bytes.fromhex(new["root"]),
        )
    proof = (
        await api.call("GET", "/api/v1/log/consistency", params={"first": old["size"], "second": new["size"]})
    ).json()["proof"]
    assert not _failed(check_consistency(old, new, proof, [keys["log_public_key"]]))
    r = await api.call("GET", "/api/v1/log/inclusion", params={"leaf": "ab" * 32})
    assert r.status_code == 404
    r = await api.call("GET", "/api/v1/log/inclusion", params={"leaf": detail["head"], "size": 999})
    assert r.status_code == 400 and "at most the log size" in r.json()["detail"]
    r = await api.call("GET", "/api/v1/log/consistency", params={"first": 5, "second": 3})
    assert r.status_code == 400
    r = await api.call("GET", "/api/v1/log/consistency", params={"first": 0, "second": 3})
    assert r.status_code == 400


async def test_sizes_and_indexes_past_any_log_are_400(api):
    """2^63 and more (past the database's bigints) and other sizes no log has: a 400 with a
    sentence, never a 500."""
    codes = await _journey(api, 1)
    leaf = (await api.shipment(codes[0]))["head"]
    big = 2**63
    for path, params in [
        ("/api/v1/log/inclusion", {"leaf": leaf, "size": big}),
        ("/api/v1/log/inclusion", {"leaf": leaf, "size": 2**64 + 5}),
        ("/api/v1/log/inclusion", {"leaf": leaf, "size": 10**40}),
        ("/api/v1/log/inclusion", {"leaf": leaf, "size": big - 1}),
        ("/api/v1/log/inclusion", {"leaf": leaf, "size": 0}),
        ("/api/v1/log/inclusion", {"leaf": leaf, "size": "x"}),
        ("/api/v1/log/inclusion", {"leaf": "ab" * 31}),
        ("/api/v1/log/consistency", {"first": 1, "second": big}),
        ("/api/v1/log/consistency", {"first": big, "second": big}),
        ("/api/v1/log/consistency", {"first": 4 * big, "second": 4 * big}),
        ("/api/v1/log/consistency", {"first": big - 1, "second": big - 1}),
        ("/api/v1/log/consistency", {"first": -1, "second": 3}),
        ("/api/v1/log/consistency", {"first": "1.5", "second": 3}),
        ("/api/v1/log/consistency", {"first": 1}),
        ("/api/v1/log/tile/0/x009/x223/x372/x036/x854/x775/807", {}),
        ("/api/v1/log/tile/0/x036/x028/x797/x018/x963/968", {}),
        ("/api/v1/log/tile/entries/x036/x028/x797/x018/x963/968.p/5", {}),
        ("/api/v1/log/tile/0/x999/x999/x999/x999/x999/x999/x999/999", {}),
    ]:
        r = await api.call("GET", path, params=params)
        assert r.status_code == 400, (path, params, r.status_code, r.text)
        detail = r.json()["detail"]
        assert detail.endswith(".") and "ParamType" not in detail, (path, params, detail)
    r = await api.call("GET", "/api/v1/log/inclusion", params={"leaf": leaf, "size": big})
    assert "at most the log size" in r.json()["detail"]
    # the last tile a log could have is a 404 (not there yet), not a 400
    r = await api.call("GET", "/api/v1/log/tile/0/x036/x028/x797/x018/x963/967")
    assert r.status_code == 404


async def test_export_verifies_and_edits_are_caught(api):
    [code] = await _journey(api, 1)
    bundle = await _export(api, code)
    assert [c.name for c in verify_bundle(bundle) if not c.ok] == []
    assert set(bundle["received_at"]) == {e["id"] for e in bundle["events"]}
    assert len(bundle["proofs"]) == 5 and bundle["keys"]["log_public_key"]  # 4 events, 1 enrolment
    assert bundle["v"] == 2 and bundle["received_at_status"] == "unverified"
    [enrolment] = bundle["enrolments"]
    assert enrolment["device"] == bundle["events"][1]["device"]
    assert enrolment["actor"] == bundle["events"][1]["actor"]
    keys = (await api.call("GET", "/api/v1/keys")).json()
    assert outcome(verify_bundle(bundle)) == UNPROVEN  # nothing pinned
    assert outcome(verify_bundle(bundle, Trust.from_keys(keys))) == VERIFIED
    assert (await api.call("GET", f"/api/v1/shipments/{code}/custody", "courier1")).status_code == 403

    edited = json.loads(json.dumps(bundle))
    edited["events"][1]["data"]["fee_vnd"] = 1
    assert "event hashes" in _failed(verify_bundle(edited))
    dropped = json.loads(json.dumps(bundle))
    del dropped["events"][2]
    assert "chain links" in _failed(verify_bundle(dropped))
    swapped = json.loads(json.dumps(bundle))
    swapped["events"][1], swapped["events"][2] = swapped["events"][2], swapped["events"][1]
    failed = _failed(verify_bundle(swapped))
    assert "chain links" in failed and "lifecycle" in failed
    forged_head = json.loads(json.dumps(bundle))
    forged_head["tree_head"]["root"] = "00" * 32
    failed = _failed(verify_bundle(forged_head))
    assert "tree head signature" in failed and "inclusion proofs" in failed


async def test_witness_cosigns(api):
    [code] = await _journey(api, 1)
    head = (await api.call("GET", "/api/v1/log/head")).json()
    key = SigningKey.generate()
    body = {
        **{k: head[k] for k in ("size", "root", "timestamp")},
        "public_key": key.public_key_b64,
        "name": "Trung tâm Phục vụ hành chính công tỉnh Gia Lai",
        "sig": key.sign_b64(head_message(head["size"], head["root"], head["timestamp"])),
    }
    assert (
        await api.call("POST", "/api/v1/log/witness", "clerk", json=body)
    ).status_code == 403  # post office
    assert (await api.call("POST", "/api/v1/log/witness", "courier1", json=body)).status_code == 403
    bad = {**body, "sig": SigningKey.generate().sign_b64(b"something else")}
    r = await api.call("POST", "/api/v1/log/witness", "shopclerk", json=bad)
    assert r.status_code == 400 and "signature" in r.json()["detail"]
    r = await api.call("POST", "/api/v1/log/witness", "shopclerk", json={**body, "size": head["size"] + 5})
    assert r.status_code == 404
    r = await api.call("POST", "/api/v1/log/witness", "shopclerk", json=body)
    assert r.status_code == 201, r.text
    await _journey(api, 1)  # the log grows after the witnessed head
    bundle = await _export(api, code)
    assert bundle["tree_head"]["size"] == head["size"]  # the witnessed head is preferred
    assert [w["public_key"] for w in bundle["witnesses"]] == [key.public_key_b64]
    assert not _failed(verify_bundle(bundle))
    # a witness's key alone is enough to pin: the head it co-signed includes every event
    assert outcome(verify_bundle(bundle, Trust(witness_keys=(key.public_key_b64,)))) == VERIFIED
    other = SigningKey.generate().public_key_b64
    failed = _failed(verify_bundle(bundle, Trust(witness_keys=(other,))))
    assert "has not co-signed" in failed["witness cosignatures"][0]
    bundle["witnesses"][0]["sig"] = SigningKey.generate().sign_b64(b"x")
    assert "witness cosignatures" in _failed(verify_bundle(bundle))


def _hoso_verify(path: Path, *trust: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "verify",
            str(path),
            *(a for t in trust for a in ("--trust", t)),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


async def test_tampering_with_the_database_is_caught(api, db, tmp_path):
    [code, other] = await _journey(api, 2)
    honest = await _export(api, code)
    path = tmp_path / "honest.json"
    path.write_text(json.dumps(honest))
    keys = (await api.call("GET", "/api/v1/keys")).json()
    pinned = str(_write(tmp_path / "keys.json", keys))
    r = _hoso_verify(path, pinned)
    assert r.returncode == 0 and "verification passed" in r.stdout, r.stdout + r.stderr
    r = _hoso_verify(path)
    assert r.returncode == 3 and "authenticity UNPROVEN" in r.stdout and "unproven" in r.stderr
    old_head = (await api.call("GET", "/api/v1/log/head")).json()

    ids = [e["id"] for e in honest["events"]]
    # 1. edit an event row: the recorded fee becomes 0
    async with db.write() as conn:
        body = json.loads(
            await conn.scalar(select(custody_events.c.body).where(custody_events.c.id == ids[1]))
        )
        body["data"]["fee_vnd"] = 0
        await conn.execute(
            update(custody_events).where(custody_events.c.id == ids[1]).values(body=json.dumps(body))
        )
    path.write_text(json.dumps(await _export(api, code)))
    r = _hoso_verify(path)
    assert r.returncode == 1 and "FAIL] event hashes" in r.stdout and ids[1] in r.stdout

    # 2. delete one event (the failed attempt) and 3. reorder two in another shipment
    async with db.write() as conn:
        await conn.execute(delete(custody_events).where(custody_events.c.id == ids[2]))
    r = _hoso_verify(_write(tmp_path / "deleted.json", await _export(api, code)))
    assert r.returncode == 1 and "FAIL] chain links" in r.stdout
    other_ids = [e["id"] for e in (await _export(api, other))["events"]]
    async with db.write() as conn:
        seqs = dict(
            (
                await conn.execute(
                    select(custody_events.c.id, custody_events.c.seq).where(
                        custody_events.c.id.in_(other_ids[1:3])
                    )
                )
            ).all()
        )
        await conn.execute(update(custody_events).where(custody_events.c.id == other_ids[1]).values(seq=-1))
        await conn.execute(
            update(custody_events).where(custody_events.c.id == other_ids[2]).values(seq=seqs[other_ids[1]])
        )
        await conn.execute(
            update(custody_events).where(custody_events.c.id == other_ids[1]).values(seq=seqs[other_ids[2]])
        )
    r = _hoso_verify(_write(tmp_path / "reordered.json", await _export(api, other)))
    assert r.returncode == 1 and "FAIL] chain links" in r.stdout and "FAIL] lifecycle" in r.stdout

    # A careful forger re-hashes the edited event and rebuilds the log over it:
    # the new head no longer extends the head an auditor saved before.
    async with db.write() as conn:
        leaves = [
            h
            for (h,) in (
                await conn.execute(
                    select(log_nodes.c.hash).where(log_nodes.c.level == 0).order_by(log_nodes.c.idx)
                )
            ).all()
        ]
        leaves[1] = merkle.leaf_hash(b"\x42" * 32)
        await conn.execute(delete(log_nodes))
        nodes = merkle.append_nodes(0, leaves, lambda lv, i: b"")
        await conn.execute(
            log_nodes.insert(), [{"level": lv, "idx": i, "hash": h} for (lv, i), h in nodes.items()]
        )
    await _journey(api, 1)
    new_head = (await api.call("GET", "/api/v1/log/head")).json()
    proof = (
        await api.call(
            "GET", "/api/v1/log/consistency", params={"first": old_head["size"], "second": new_head["size"]}
        )
    ).json()["proof"]
    failed = _failed(check_consistency(old_head, new_head, proof, [keys["log_public_key"]]))
    assert "consistency" in failed


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("name", ["log", "event"])
async def test_rotated_keys_still_verify_old_records(api, settings, name):
    from litestar.testing import AsyncTestClient

    from server.app import create_app
    from server.keys import rotate_key
    from tests.api.conftest import Api

    [code] = await _journey(api, 1)
    before = await _export(api, code)
    old, new = rotate_key(settings.keys_dir, name)
    async with AsyncTestClient(create_app(settings), base_url="http://testserver") as c2:
        api2 = Api(c2)
        keys = (await api2.call("GET", "/api/v1/keys")).json()
        assert keys[f"{name}_public_key"] == new
        assert [(k["name"], k["public_key"]) for k in keys["retired"]] == [(name, old)]
        [code2] = await _journey(api2, 1)
        after = await _export(api2, code)
        assert not _failed(verify_bundle(after))
        assert not _failed(verify_bundle(await _export(api2, code2)))
        assert not _failed(verify_bundle({**before, "keys": keys}))
        # keys pinned before the rotation verify records signed before it, not after
        pinned_before = Trust.from_keys(before["keys"])
        assert outcome(verify_bundle(before, pinned_before)) == VERIFIED
        assert outcome(verify_bundle(before, Trust.from_keys(keys))) == VERIFIED
        assert outcome(verify_bundle(await _export(api2, code2), pinned_before)) == FAILED


async def test_a_bundle_reforged_with_fresh_keys_is_not_authentic(api, tmp_path):
    """Issue 13 item 6: the recipient changed, every event re-signed, a new tree and head,
    and the bundle's `keys` replaced. Only keys the auditor pinned beforehand catch it."""
    from tests.forgery import FORGED_RECIPIENT, forge_bundle

    [code] = await _journey(api, 1)
    honest = await _export(api, code)
    forged = forge_bundle(honest)
    assert forged["events"][0]["data"]["recipient"]["name"] == FORGED_RECIPIENT
    path = _write(tmp_path / "forged.json", forged)
    pinned = _write(tmp_path / "keys.json", (await api.call("GET", "/api/v1/keys")).json())
    # unpinned, the forgery is as consistent as the real thing: that is all it can say
    assert not _failed(verify_bundle(forged))
    r = _hoso_verify(path)
    assert r.returncode == 3 and "authenticity UNPROVEN" in r.stdout, r.stdout + r.stderr
    # pinned, it is caught: the head, the server's events and the enrolments are not the server's
    r = _hoso_verify(path, str(pinned))
    assert r.returncode == 1, r.stdout + r.stderr
    for failed in ("signatures", "device enrolment", "tree head signature", "authenticity"):
        assert f"[FAIL] {failed}" in r.stdout, r.stdout
    assert _hoso_verify(_write(tmp_path / "honest.json", honest), str(pinned)).returncode == 0
