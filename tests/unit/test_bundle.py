"""The offline verifier (shared/bundle.py) on bundles built here: what pinned keys prove."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest

from shared import merkle
from shared.bundle import FAILED, UNPROVEN, VERIFIED, Trust, head_message, outcome, parse_trust, verify_bundle
from shared.crypto import SigningKey
from shared.enrolment import EnrolmentError, check_enrolment, make_enrolment
from shared.events import new_event_id, sign_event
from tests.forgery import forge_bundle

CODE = "1234567890128"
COURIER = "courier:5"


class Server:
    """A server's keys and log, small enough to hold in a test."""

    def __init__(self) -> None:
        self.event, self.log, self.label = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()

    def keys(self) -> dict[str, Any]:
        return {
            "label_public_key": self.label.public_key_b64,
            "event_public_key": self.event.public_key_b64,
            "log_public_key": self.log.public_key_b64,
            "retired": [],
        }

    def trust(self) -> Trust:
        return Trust.from_keys(self.keys())


def build(
    server: Server,
    *,
    enrol_actor: str = COURIER,
    enrol_after_event: bool = False,
    enrolled_at: str = "2026-11-22T03:00:00.000Z",
    with_enrolment: bool = True,
) -> dict[str, Any]:
    """registered (the server) → picked_up (a courier's phone), as the server would export it."""
    device = SigningKey.generate()
    registered = sign_event(
        server.event,
        id=new_event_id(),
        shipment=CODE,
        type="registered",
        occurred_at="2026-11-22T02:00:00.000Z",
        actor="clerk:1",
        data={"recipient": {"name": "Nguyễn Văn An"}, "no_fix_reason": "recorded by the server"},
    )
    picked = sign_event(
        device,
        id=new_event_id(),
        shipment=CODE,
        type="picked_up",
        occurred_at="2026-11-22T04:00:00.000Z",
        actor=COURIER,
        counterparty={"name": "Trần Thị Bình", "role": "clerk"},
        attachments={"signature": "ab" * 32, "photos": []},
        data={"no_fix_reason": "indoors"},
        prev=registered.hash,
    )
    record = make_enrolment(server.event, device.public_key_b64, enrol_actor, enrolled_at)
    order = (
        [registered.hash, picked.hash, record["hash"]]
        if enrol_after_event
        else [
            registered.hash,
            record["hash"],
            picked.hash,
        ]
    )
    if not with_enrolment:
        order.remove(record["hash"])
    leaves = [merkle.leaf_hash(bytes.fromhex(h)) for h in order]
    nodes = merkle.append_nodes(0, leaves, lambda level, index: b"")
    size, root = len(leaves), merkle.root_of(leaves).hex()
    timestamp = 1795400000000  # 2026-11-23T02:13:20Z: the head was signed after every receipt

    def get(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    events = [msgspec.to_builtins(registered), msgspec.to_builtins(picked)]
    return {
        "v": 2,
        "shipment": {"code": CODE, "kind": "submission", "state": "in_custody", "head": picked.hash},
        "events": events,
        "received_at": {registered.id: "2026-11-22T02:00:00.100Z", picked.id: "2026-11-22T04:00:05.000Z"},
        "received_at_status": "unverified",
        "tree_head": {
            "size": size,
            "root": root,
            "timestamp": timestamp,
            "sig": server.log.sign_b64(head_message(size, root, timestamp)),
        },
        "proofs": [
            {"leaf": h, "index": i, "proof": [p.hex() for p in merkle.inclusion_path(i, size, get)]}
            for i, h in enumerate(order)
        ],
        "keys": server.keys(),
        "witnesses": [],
        "enrolments": [record] if with_enrolment else [],
    }


def failed(checks: list) -> dict[str, list[str]]:
    return {c.name: c.failures for c in checks if not c.ok}


def test_an_honest_bundle_verifies_only_when_keys_are_pinned():
    server = Server()
    bundle = build(server)
    assert outcome(verify_bundle(bundle)) == UNPROVEN
    checks = verify_bundle(bundle, server.trust())
    assert outcome(checks) == VERIFIED, failed(checks)
    assert outcome(verify_bundle(bundle, Server().trust())) == FAILED  # someone else's keys


def test_a_forgery_with_fresh_keys_passes_unpinned_and_fails_pinned():
    server = Server()
    forged = forge_bundle(build(server))
    assert outcome(verify_bundle(forged)) == UNPROVEN
    broken = failed(verify_bundle(forged, server.trust()))
    assert {"signatures", "device enrolment", "tree head signature", "authenticity"} <= set(broken)


def test_a_device_key_without_an_enrolment_record_fails():
    """Someone with the database's write access adds a device row: the server accepts its
    events and logs them, but cannot have signed an enrolment record for it."""
    server = Server()
    broken = failed(verify_bundle(build(server, with_enrolment=False), server.trust()))
    assert "has no valid enrolment record" in broken["device enrolment"][0]


def test_enrolment_must_name_the_actor_and_precede_the_event():
    server = Server()
    broken = failed(verify_bundle(build(server, enrol_actor="courier:6"), server.trust()))
    assert "enrolled to courier:6, not courier:5" in broken["device enrolment"][0]
    broken = failed(verify_bundle(build(server, enrol_after_event=True), server.trust()))
    assert "entered the log after the event" in broken["device enrolment"][0]
    broken = failed(verify_bundle(build(server, enrolled_at="2026-11-22T05:00:00.000Z"), server.trust()))
    assert "before the device was enrolled" in broken["device enrolment"][0]


def test_an_enrolment_record_signed_by_another_key_or_edited_fails():
    server, other = Server(), Server()
    bundle = build(server)
    bundle["enrolments"][0] = make_enrolment(
        other.event, bundle["enrolments"][0]["device"], COURIER, bundle["enrolments"][0]["enrolled_at"]
    )
    broken = failed(verify_bundle(bundle, server.trust()))
    assert "not signed by the server's event key" in broken["device enrolment"][0]
    edited = build(server)
    edited["enrolments"][0]["actor"] = "courier:9"
    assert "hash does not match" in failed(verify_bundle(edited, server.trust()))["device enrolment"][0]
    record = build(server)["enrolments"][0]
    assert check_enrolment(record, [server.event.public_key_b64]) == server.event.public_key_b64
    for bad in ({**record, "extra": 1}, {**record, "v": 2}, {**record, "enrolled_at": "yesterday"}, "x"):
        with pytest.raises(EnrolmentError):
            check_enrolment(bad, [server.event.public_key_b64])


def test_a_pinned_witness_must_have_cosigned():
    server, witness = Server(), SigningKey.generate()
    bundle = build(server)
    head = bundle["tree_head"]
    trust = Trust(witness_keys=(witness.public_key_b64,))
    assert "has not co-signed" in failed(verify_bundle(bundle, trust))["witness cosignatures"][0]
    bundle["witnesses"] = [
        {
            "public_key": witness.public_key_b64,
            "name": "Trung tâm Phục vụ hành chính công",
            "sig": witness.sign_b64(head_message(head["size"], head["root"], head["timestamp"])),
        }
    ]
    assert outcome(verify_bundle(bundle, trust)) == VERIFIED
    assert outcome(verify_bundle(bundle, trust | server.trust())) == VERIFIED
    # a forger can copy the witness entry, not make it sign a new head
    forged = forge_bundle(bundle)
    forged["witnesses"] = bundle["witnesses"]
    assert outcome(verify_bundle(forged, trust)) == FAILED


def test_version_1_bundles_still_verify_but_device_keys_stay_unproven():
    server = Server()
    v1 = build(server)
    v1["v"] = 1
    del v1["enrolments"], v1["received_at_status"]
    checks = verify_bundle(v1, server.trust())
    assert outcome(checks) == UNPROVEN
    [enrol] = [c for c in checks if c.name == "device enrolment"]
    assert enrol.unproven and "version 1" in enrol.notes[0]
    assert failed(verify_bundle({**v1, "v": 3}))["structure"]


def test_receipt_times_are_labelled_and_impossible_ones_caught():
    server = Server()
    bundle = build(server)
    [receipts] = [c for c in verify_bundle(bundle, server.trust()) if c.name == "receipt times"]
    assert receipts.ok and "UNVERIFIED" in receipts.notes[0]
    late = copy.deepcopy(bundle)
    late["received_at"][late["events"][1]["id"]] = "2027-01-01T00:00:00.000Z"  # after the head
    assert "later than the tree head" in failed(verify_bundle(late, server.trust()))["receipt times"][0]


def test_parse_trust():
    server = Server()
    assert parse_trust(json.dumps(server.keys())).log_keys == (server.log.public_key_b64,)
    rotated = {**server.keys(), "retired": [{"name": "log", "public_key": Server().log.public_key_b64}]}
    assert len(parse_trust(json.dumps(rotated)).log_keys) == 2
    key = SigningKey.generate().public_key_b64
    assert parse_trust(key + "\n").witness_keys == (key,)
    assert parse_trust(json.dumps({"public_key": key, "name": "x"})).witness_keys == (key,)
    for bad in ("", "{}", "[1]", json.dumps({"log_public_key": "short"}), "not a key"):
        with pytest.raises(ValueError):
            parse_trust(bad)
    assert not parse_trust(key).server_pinned and parse_trust(key).pinned
