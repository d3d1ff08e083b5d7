"""A forger who holds an honest export bundle and no private key of the server's.

`forge_bundle` changes the recipient in the `registered` event, then rebuilds
everything a verifier could check with keys the forger made: every event re-signed
(server-side events with a fresh "event key", courier events with fresh "device keys",
and fresh enrolment records for them), a new Merkle tree, a tree head signed with a
fresh "log key", and the bundle's `keys` replaced. Only a verifier that trusts keys
pinned beforehand, not the keys a bundle carries, can tell it from the real thing.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from shared import merkle
from shared.bundle import head_message
from shared.crypto import SigningKey
from shared.enrolment import make_enrolment
from shared.events import sign_event

FORGED_RECIPIENT = "Kẻ Mạo Danh"


def forge_bundle(honest: dict[str, Any]) -> dict[str, Any]:
    forged = copy.deepcopy(honest)
    event_key, log_key = SigningKey.generate(), SigningKey.generate()
    device_keys: dict[str, SigningKey] = {}
    enrolments: dict[str, dict[str, Any]] = {}
    server_keys = {honest["keys"]["event_public_key"]} | {
        k["public_key"] for k in honest["keys"].get("retired") or [] if k.get("name") == "event"
    }
    first_received = min(honest.get("received_at", {}).values(), default="2026-01-01T00:00:00.000Z")
    leaves: list[bytes] = []
    events = []
    prev = None
    for raw in copy.deepcopy(honest["events"]):
        body = {k: v for k, v in raw.items() if k not in ("hash", "sig", "device")}
        if body["type"] == "registered":
            body["data"]["recipient"]["name"] = FORGED_RECIPIENT
        body["prev"] = prev
        if raw["device"] in server_keys:
            key = event_key
        else:
            key = device_keys.setdefault(raw["device"], SigningKey.generate())
            if key.public_key_b64 not in enrolments:
                record = make_enrolment(event_key, key.public_key_b64, raw["actor"], first_received)
                enrolments[key.public_key_b64] = record
                leaves.append(bytes.fromhex(record["hash"]))
        ev = msgspec.to_builtins(sign_event(key, **body))
        events.append(ev)
        leaves.append(bytes.fromhex(ev["hash"]))
        prev = ev["hash"]
    forged["events"] = events
    forged["received_at"] = {
        new["id"]: honest["received_at"][old["id"]]
        for old, new in zip(honest["events"], events, strict=True)
        if old["id"] in honest.get("received_at", {})
    }
    forged["shipment"]["head"] = prev
    if "enrolments" in honest:
        forged["enrolments"] = list(enrolments.values())

    leaf_hashes = [merkle.leaf_hash(x) for x in leaves]
    size = len(leaves)
    root = merkle.root_of(leaf_hashes)
    nodes = merkle.append_nodes(0, leaf_hashes, lambda level, index: b"")

    def get(level: int, index: int) -> bytes:
        return nodes[(level, index)]

    forged["proofs"] = [
        {"leaf": leaf.hex(), "index": i, "proof": [p.hex() for p in merkle.inclusion_path(i, size, get)]}
        for i, leaf in enumerate(leaves)
    ]
    timestamp = honest["tree_head"]["timestamp"]
    forged["tree_head"] = {
        "size": size,
        "root": root.hex(),
        "timestamp": timestamp,
        "sig": log_key.sign_b64(head_message(size, root.hex(), timestamp)),
    }
    forged["keys"] = {
        "label_public_key": SigningKey.generate().public_key_b64,
        "event_public_key": event_key.public_key_b64,
        "log_public_key": log_key.public_key_b64,
        "retired": [],
    }
    forged["witnesses"] = []
    return forged
